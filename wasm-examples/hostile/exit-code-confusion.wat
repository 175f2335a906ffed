;; Exits with 0xffffffff, which wazero also uses to mean "context cancelled".
;; expect: E2002 workload-exit
;; debug-exit: 255
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (func (export "_start")
    (call $exit (i32.const -1))))
