;; Grows memory to exactly its limit (1,000,000 bytes, rounded up to 16 pages)
;; and writes its last byte: the limit is not a page short. Exits 0.
;; expect: ok
;; memory: 1000000
(module
  (memory 1)
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 15)) (i32.const -1))
      (then unreachable))
    (i32.store8 (i32.const 1048575) (i32.const 1))))
