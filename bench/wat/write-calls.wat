;; Writes 16 bytes to stdout N times with fd_write; N as in clock-calls.wat.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 0) "\00\01\00\00\10\00\00\00")
  (data (i32.const 256) "0123456789abcde\n")
  (global $n i32 (i32.const 2000000))
  (func (export "_start") (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (global.get $n)))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))))
