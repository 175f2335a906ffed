;; Asks the host to raise SIGKILL.
;; expect: E3007 host-call-trapped
(module
  (import "wasi_snapshot_preview1" "proc_raise" (func $raise (param i32) (result i32)))
  (func (export "_start")
    (drop (call $raise (i32.const 9)))))
