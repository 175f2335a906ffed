;; Creates a file in a writable preopen and writes 64 KiB to it forever.
;; expect: E4005 file-output-limit
;; dirs: rw
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 2)
  (data (i32.const 0) "\00\04\00\00\00\00\01\00")
  (data (i32.const 100) "fill.bin")
  (func (export "_start")
    (drop (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 8)
             (i32.const 9) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 64)))
    (loop $again
      (drop (call $fd_write (i32.load (i32.const 64)) (i32.const 0) (i32.const 1) (i32.const 16)))
      (br $again))))
