;; Makes its own link out of the preopen and follows it: contained if the
;; open fails (exit 0), escaped otherwise (trap).
;; expect: ok
;; dirs: rw
(module
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory 1)
  (data (i32.const 100) "../../../../../../../../etc")
  (data (i32.const 200) "out")
  (data (i32.const 300) "out/passwd")
  (func (export "_start")
    (drop (call $symlink (i32.const 100) (i32.const 27) (i32.const 3) (i32.const 200) (i32.const 3)))
    (if (i32.eqz (call $open (i32.const 3) (i32.const 1) (i32.const 300) (i32.const 10)
                   (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)))
      (then unreachable))
    (call $exit (i32.const 0))))
