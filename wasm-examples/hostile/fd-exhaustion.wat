;; Opens the preopen's file again and again without closing it.
;; expect: E4004 open-files-limit
;; dirs: ro
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 100) "inside.txt")
  (func (export "_start")
    (loop $again
      (drop (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 10)
               (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)))
      (br $again))))
