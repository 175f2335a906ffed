;; call_indirect past the end of the table traps.
(module
  (type $t (func))
  (table 1 funcref)
  (func (export "_start")
    (call_indirect (type $t) (i32.const 7))))
