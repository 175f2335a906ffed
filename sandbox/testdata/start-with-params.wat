;; A _start that takes an argument, which nothing can pass it.
(module
  (memory (export "memory") 1)
  (func (export "_start") (param i32)))
