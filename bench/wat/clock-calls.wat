;; Calls clock_time_get(monotonic) N times; N is the global below, which the
;; ratios tool rewrites (0 for the baseline).
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory 1)
  (global $n i32 (i32.const 5000000))
  (func (export "_start") (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (global.get $n)))
        (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))))
