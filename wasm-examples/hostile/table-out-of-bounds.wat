;; call_indirect past the end of the table traps.
;; expect: E2001 workload-trap
(module
  (type $t (func))
  (table 1 funcref)
  (func (export "_start")
    (call_indirect (type $t) (i32.const 7))))
