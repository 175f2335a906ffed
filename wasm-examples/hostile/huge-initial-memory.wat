;; Declares 4 GiB of memory up front.
;; expect: E4001 memory-limit
(module
  (memory 65536)
  (func (export "_start")))
