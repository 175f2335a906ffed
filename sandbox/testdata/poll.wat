;; A guest that hands poll_oneoff whatever its caller put in its memory:
;; poll(in, out, nsubscriptions, result_nevents) is the call's errno.
;; FuzzPollOneoff writes random subscriptions into its one page.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "poll") (param i32 i32 i32 i32) (result i32)
    (call $poll_oneoff (local.get 0) (local.get 1) (local.get 2) (local.get 3))))
