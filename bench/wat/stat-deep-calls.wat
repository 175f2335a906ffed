;; Calls path_filestat_get on "sub/f" in the first preopen (fd 3, mounted at
;; /data) N times: a path of two components, which the gate resolves
;; beneath the mount (openat2), where a name in the mount's own directory
;; takes one fstatat.
;; N is the global below, which the ratios tool rewrites (0 for the baseline).
(module
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $stat (param i32 i32 i32 i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 0) "sub/f")
  (global $n i32 (i32.const 1000000))
  (func (export "_start") (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (global.get $n)))
        ;; fd 3, follow links, path "sub/f" at 0 (5 bytes), filestat at 64
        (if (call $stat (i32.const 3) (i32.const 1) (i32.const 0) (i32.const 5) (i32.const 64))
          (then unreachable))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))))
