;; Creates a file in a read-only preopen: contained if refused (exit 0).
;; expect: ok
;; dirs: ro
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1)
  (data (i32.const 100) "planted.txt")
  (data (i32.const 200) "planted-dir")
  (data (i32.const 300) "inside.txt")
  (func $must_fail (param i32) (if (i32.eqz (local.get 0)) (then unreachable)))
  (func (export "_start")
    ;; oflags 1|8 = O_CREAT|O_TRUNC, rights all
    (call $must_fail (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 11)
                   (i32.const 9) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 64)))
    (call $must_fail (call $mkdir (i32.const 3) (i32.const 200) (i32.const 11)))
    (call $must_fail (call $unlink (i32.const 3) (i32.const 300) (i32.const 10)))
    (call $exit (i32.const 0))))
