;; Host calls in a loop, for the gate's per-call benchmarks: each export
;; makes n calls of one WASI function. write: fd_write of 16 bytes to
;; stdout; clock: clock_time_get; read: fd_read of 16 bytes from stdin;
;; fdstat: fd_fdstat_get of stdout; stat: path_filestat_get of "f" beneath
;; the first preopen (3); open: path_open of "f" there and fd_close of what
;; it opened (two calls a turn); poll: poll_oneoff of one relative clock of
;; 0 ns.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; an iovec of 16 bytes at 256
  (data (i32.const 0) "\00\01\00\00\10\00\00\00")
  (data (i32.const 256) "0123456789abcde\n")
  ;; the path "f"
  (data (i32.const 512) "f")
  ;; a subscription: userdata 0, tag CLOCK, clock MONOTONIC, timeout 0, relative
  (data (i32.const 2048) "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\01")
  (func $check (param $errno i32)
    (if (local.get $errno) (then unreachable)))
  (func (export "write") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "clock") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 128)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "read") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "fdstat") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_fdstat_get (i32.const 1) (i32.const 1024)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "stat") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const 512) (i32.const 1) (i32.const 1024)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "open") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 512) (i32.const 1)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 96)))
        (call $check (call $fd_close (i32.load (i32.const 96))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "poll") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $poll_oneoff (i32.const 2048) (i32.const 2112) (i32.const 1) (i32.const 2200)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))))
