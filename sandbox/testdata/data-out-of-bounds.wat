;; A data segment past the end of its memory: instantiating the module
;; fails (it has no start section, so that is done before BeforeStart).
(module
  (memory 1)
  (data (i32.const 65535) "xy")
  (func (export "_start")))
