;; Integer division by zero traps.
;; expect: E2001 workload-trap
(module
  (func (export "_start")
    (drop (i32.div_u (i32.const 1) (i32.const 0)))))
