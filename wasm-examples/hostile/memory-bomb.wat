;; Grows memory a page at a time until the runtime says no, then keeps asking.
;; expect: E4001 memory-limit
(module
  (memory 1)
  (func (export "_start")
    (loop $again
      (drop (memory.grow (i32.const 16)))
      (br $again))))
