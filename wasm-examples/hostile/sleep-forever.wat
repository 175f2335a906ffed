;; Sleeps for a day in poll_oneoff, again and again.
;; expect: E4002 wall-time-limit
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  ;; a clock subscription at 0: userdata 0, tag 0 (clock), id 1 (monotonic),
  ;; timeout 86400 s in ns, precision 0, flags 0
  (data (i32.const 0) "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\01\00\00\00\00\00\00\00\00\00\c0\f9\d5\4e\00\00")
  (func (export "_start")
    (loop $again
      (drop (call $poll (i32.const 0) (i32.const 128) (i32.const 1) (i32.const 256)))
      (br $again))))
