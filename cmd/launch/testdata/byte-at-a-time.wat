;; Writes 1 MiB to stdout one byte at a time: byte i is i mod 256.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  ;; iovec at 0: buf=1024, len=1
  (data (i32.const 0) "\00\04\00\00\01\00\00\00")
  (func (export "_start")
    (local $i i32)
    (loop $again
      (i32.store8 (i32.const 1024) (local.get $i))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 1048576))))))
