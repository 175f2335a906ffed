;; Declares 4 GiB of memory up front.
(module
  (memory 65536)
  (func (export "_start")))
