;; The smallest useful workload: one line to stdout through WASI's fd_write.
;; module.wasm beside it is this, assembled by wat2wasm ('make corpus'
;; checks that they match).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from a tiny module\n")
  (func (export "_start")
    ;; One iovec at 0: the 25 bytes at 16.
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 25))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
