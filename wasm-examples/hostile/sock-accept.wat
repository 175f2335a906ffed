;; Tries to accept a connection on every descriptor; contained if each is
;; refused (exit 0), escaped if any succeeds (trap).
;; expect: ok
;; dirs: ro
(module
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1)
  (func (export "_start") (local $fd i32)
    (loop $next
      (if (i32.eqz (call $accept (local.get $fd) (i32.const 0) (i32.const 8)))
        (then unreachable))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $fd) (i32.const 16))))
    (call $exit (i32.const 0))))
