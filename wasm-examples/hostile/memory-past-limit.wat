;; Grows memory to its limit (1,000,000 bytes, rounded up to 16 pages), then
;; one page more: the runtime ends the run there, E4001. A limit enforced
;; loosely lets the page through, and the module exits 0.
;; expect: E4001 memory-limit
;; memory: 1000000
(module
  (memory 1)
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 15)) (i32.const -1))
      (then unreachable))
    (drop (memory.grow (i32.const 1)))))
