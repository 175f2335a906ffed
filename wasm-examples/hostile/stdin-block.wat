;; Reads stdin, which never has data.
;; expect: E4002 wall-time-limit
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 0) "\00\01\00\00\00\01\00\00")
  (func (export "_start")
    (loop $again
      (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
      (br $again))))
