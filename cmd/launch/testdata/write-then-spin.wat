;; Writes "written before the kill\n" to alive.txt in its first preopen (the
;; sealed mount), then spins until the wall-time limit kills it.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  ;; iovec at 0: base 200, length 24
  (data (i32.const 0) "\c8\00\00\00\18\00\00\00")
  (data (i32.const 100) "alive.txt")
  (data (i32.const 200) "written before the kill\n")
  (func (export "_start")
    (drop (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 9)
             (i32.const 9) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 64)))
    (drop (call $fd_write (i32.load (i32.const 64)) (i32.const 0) (i32.const 1) (i32.const 16)))
    (loop $again (br $again))))
