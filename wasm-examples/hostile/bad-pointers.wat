;; Hands the host pointers and lengths outside memory; contained if every call
;; fails cleanly (exit 0), a trap otherwise.
;; expect: ok
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1)
  ;; an iovec at 0 claiming 1 GiB at 0xfff0
  (data (i32.const 0) "\f0\ff\00\00\00\00\00\40")
  (func $must_fail (param i32) (if (i32.eqz (local.get 0)) (then unreachable)))
  (func (export "_start")
    (call $must_fail (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
    (call $must_fail (call $fd_write (i32.const 1) (i32.const 0xfffffff0) (i32.const 4) (i32.const 16)))
    (call $must_fail (call $random (i32.const 0xffff) (i32.const -1)))
    (call $must_fail (call $args (i32.const -8) (i32.const -8)))
    (call $must_fail (call $clock (i32.const 0) (i64.const 0) (i32.const -4)))
    (call $must_fail (call $clock (i32.const 99) (i64.const 0) (i32.const 64)))
    (call $must_fail (call $poll (i32.const -48) (i32.const 64) (i32.const 1000000) (i32.const 64)))
    (call $exit (i32.const 0))))
