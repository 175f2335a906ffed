;; A WASI reactor with an entry: _initialize sets a flag, run prints
;; "initialized" when it was called first, "not initialized" otherwise.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $ready (mut i32) (i32.const 0))
  (data (i32.const 100) "not initialized\n")
  ;; 200: the iovec of "initialized\n" (at 104, 12 bytes); 208: of the whole.
  (data (i32.const 200) "\68\00\00\00\0c\00\00\00")
  (data (i32.const 208) "\64\00\00\00\10\00\00\00")
  (func (export "_initialize") (global.set $ready (i32.const 1)))
  (func (export "run")
    (drop (call $fd_write (i32.const 1)
      (select (i32.const 200) (i32.const 208) (global.get $ready))
      (i32.const 1) (i32.const 300)))))
