;; Traps in the start section, before _start.
;; expect: E2001 workload-trap
(module
  (func $boom unreachable)
  (start $boom)
  (func (export "_start")))
