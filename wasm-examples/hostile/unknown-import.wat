;; Imports a function from a module the runtime does not have.
;; expect: E1012 module-import-denied
(module
  (import "env" "system" (func $system (param i32) (result i32)))
  (func (export "_start")
    (drop (call $system (i32.const 0)))))
