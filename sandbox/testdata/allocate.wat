;; fd_allocate through the gate, whose amendment answers a file already
;; long enough from its own fd_filestat_get: open opens "f" beneath the
;; first preopen (3) with every right and returns its descriptor; allocate
;; returns fd_allocate(fd, offset, len)'s errno; size returns the size
;; fd_filestat_get reports.
(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $fd_allocate (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fd_filestat_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "f")
  (func (export "open") (result i32)
    (if (call $path_open (i32.const 3) (i32.const 1) (i32.const 512) (i32.const 1)
          (i32.const 0) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 96))
      (then unreachable))
    (i32.load (i32.const 96)))
  (func (export "allocate") (param $fd i32) (param $offset i64) (param $len i64) (result i32)
    (call $fd_allocate (local.get $fd) (local.get $offset) (local.get $len)))
  (func (export "size") (param $fd i32) (result i64)
    (if (call $fd_filestat_get (local.get $fd) (i32.const 1024))
      (then unreachable))
    (i64.load (i32.const 1056))))
