;; Calls itself until the stack runs out.
;; wazero's call stack (up to 400 MB) counts against the resident bound: at
;; 64 MiB this recursion reaches wazero's own stack overflow first.
;; expect: E2001 workload-trap
;; memory: 64MiB
(module
  (func $down (param i64) (result i64)
    (i64.add (call $down (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
  (func (export "_start")
    (drop (call $down (i64.const 0)))))
