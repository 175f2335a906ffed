;; Opens ../../../../etc/passwd and /etc/passwd through the preopen (fd 3);
;; contained if both fail (exit 0), escaped if either opens (trap).
;; expect: ok
;; dirs: ro
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1)
  (data (i32.const 100) "../../../../../../../../etc/passwd")
  (data (i32.const 200) "/etc/passwd")
  (func $try (param $p i32) (param $n i32)
    (if (i32.eqz (call $open (i32.const 3) (i32.const 1) (local.get $p) (local.get $n)
                   (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)))
      (then unreachable)))
  (func (export "_start")
    (call $try (i32.const 100) (i32.const 34))
    (call $try (i32.const 200) (i32.const 11))
    (call $exit (i32.const 0))))
