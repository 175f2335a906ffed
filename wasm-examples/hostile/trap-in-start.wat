;; Traps in the start section, before _start.
(module
  (func $boom unreachable)
  (start $boom)
  (func (export "_start")))
