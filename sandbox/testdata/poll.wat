;; A guest that hands poll_oneoff whatever its caller put in its memory:
;; poll(in, out, nsubscriptions, result_nevents) is the call's errno.
;; FuzzPollOneoff writes random subscriptions into its one page; moved()
;; renumbers stdout onto stderr first, for a guest whose descriptors the
;; gate numbers itself (stdin 0, stdout 2, nothing at 1).
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber"
    (func $fd_renumber (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "poll") (param i32 i32 i32 i32) (result i32)
    (call $poll_oneoff (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "moved") (result i32)
    (call $fd_renumber (i32.const 1) (i32.const 2))))
