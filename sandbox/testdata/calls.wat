;; Host calls in a loop, for the gate's per-call benchmarks: write(n) makes
;; n fd_write calls of 16 bytes to stdout, clock(n) n clock_time_get calls.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\00\01\00\00\10\00\00\00")
  (data (i32.const 256) "0123456789abcde\n")
  (func (export "write") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "clock") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 128)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))))
