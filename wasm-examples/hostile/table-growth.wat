;; Grows a table without a maximum by 10 million entries at a time, 30 times
;; (80 MB of the runner's memory each), under a 16 MiB memory limit. The
;; runner's resident memory is bounded by the memory limit: E4001.
;; expect: E4001 memory-limit
(module
  (table $t 1 funcref)
  (func (export "_start")
    (local $i i32)
    (loop $again
      (if (i32.eq (table.grow $t (ref.null func) (i32.const 10000000)) (i32.const -1))
        (then unreachable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 30))))))
