;; Host calls whose paths and buffers a trace shows as strings: a path
;; with an escape and a tab in it, a write gathered from two iovecs, a
;; write longer than the trace shows, a path outside memory, a read, and a
;; write of 2000 empty iovecs (at 2000), more than a trace reads.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "no\1bsuch\tfile")
  (data (i32.const 200) "Hello, ")
  (data (i32.const 210) "world\n")
  (data (i32.const 300) "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
  ;; 1000: two iovecs (200, 7), (210, 6); 1016: one (300, 100); 1024: one
  ;; (1100, 16), the read's buffer.
  (data (i32.const 1000) "\c8\00\00\00\07\00\00\00\d2\00\00\00\06\00\00\00")
  (data (i32.const 1016) "\2c\01\00\00\64\00\00\00")
  (data (i32.const 1024) "\4c\04\00\00\10\00\00\00")
  (func (export "_start")
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 12)
      (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 500)))
    (drop (call $fd_write (i32.const 1) (i32.const 1000) (i32.const 2) (i32.const 504)))
    (drop (call $fd_write (i32.const 1) (i32.const 1016) (i32.const 1) (i32.const 504)))
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 0xffffff00) (i32.const 10)
      (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 500)))
    (drop (call $fd_read (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 508)))
    (drop (call $fd_write (i32.const 1) (i32.const 2000) (i32.const 2000) (i32.const 504)))))
