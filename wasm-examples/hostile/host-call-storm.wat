;; Makes cheap host calls as fast as it can, forever.
;; expect: E4002 wall-time-limit
(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (func (export "_start")
    (loop $again
      (drop (call $yield))
      (br $again))))
