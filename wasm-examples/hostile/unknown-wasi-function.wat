;; Imports a WASI function that preview 1 does not define.
;; expect: E1012 module-import-denied
(module
  (import "wasi_snapshot_preview1" "sock_connect" (func $connect (param i32 i32 i32) (result i32)))
  (func (export "_start")))
