;; Imports fd_write with the wrong signature.
;; expect: E1012 module-import-denied
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i64) (result i64)))
  (func (export "_start")))
