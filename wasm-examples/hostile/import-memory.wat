;; Asks the host for its memory.
;; expect: E1012 module-import-denied
(module
  (import "env" "memory" (memory 1))
  (func (export "_start")))
