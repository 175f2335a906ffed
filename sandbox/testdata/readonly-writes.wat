;; Every write-like WASI call, once each, against the first preopen (fd 3),
;; which holds files f, f2 and u and a directory d. The errno of each call
;; is one byte of stdout, in this order:
;;    0 path_open f, read only (the descriptor R the fd_ calls fall back on)
;;    1 path_open f with FD_WRITE (descriptor W; R when refused)
;;    2 path_open new with O_CREAT
;;    3 path_open f with O_TRUNC
;;    4 path_open f with FD_WRITE and FDFLAGS_APPEND
;;    5 fd_write W
;;    6 fd_pwrite W
;;    7 fd_filestat_set_size W
;;    8 fd_filestat_set_times W
;;    9 fd_allocate W
;;   10 path_create_directory newdir
;;   11 path_filestat_set_times f
;;   12 path_symlink f -> s
;;   13 path_link f -> h
;;   14 path_rename f2 -> g
;;   15 path_unlink_file u
;;   16 path_remove_directory d
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite"
    (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size"
    (func $fd_filestat_set_size (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_times"
    (func $fd_filestat_set_times (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate"
    (func $fd_allocate (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory"
    (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times"
    (func $path_filestat_set_times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link"
    (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename"
    (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file"
    (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory"
    (func $path_remove_directory (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "f")
  (data (i32.const 104) "new")
  (data (i32.const 108) "newdir")
  (data (i32.const 116) "f2")
  (data (i32.const 120) "g")
  (data (i32.const 124) "s")
  (data (i32.const 128) "h")
  (data (i32.const 132) "u")
  (data (i32.const 136) "d")
  (data (i32.const 300) "data")
  ;; 200: the iovec of the payload; 208: the iovec of the report (17 bytes
  ;; at 400); 216: bytes written; 220: an opened descriptor.
  (data (i32.const 200) "\2c\01\00\00\04\00\00\00")
  (data (i32.const 208) "\90\01\00\00\11\00\00\00")

  (func $rec (param $k i32) (param $e i32)
    (i32.store8 (i32.add (i32.const 400) (local.get $k)) (local.get $e)))

  ;; open opens path (at p, n bytes) under fd 3 and records its errno as k.
  (func $open (param $k i32) (param $p i32) (param $n i32) (param $oflags i32) (param $rights i64) (param $fdflags i32) (result i32)
    (local $e i32)
    (local.set $e (call $path_open (i32.const 3) (i32.const 0) (local.get $p) (local.get $n)
      (local.get $oflags) (local.get $rights) (i64.const 0) (local.get $fdflags) (i32.const 220)))
    (call $rec (local.get $k) (local.get $e))
    (local.get $e))

  (func (export "_start")
    (local $r i32) (local $w i32) (local $e i32)
    ;; 0: read only. FD_READ is 1<<1, FD_WRITE 1<<6.
    (drop (call $open (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 0) (i64.const 2) (i32.const 0)))
    (local.set $r (i32.load (i32.const 220)))
    ;; 1: for writing; W is R when it is refused.
    (local.set $e (call $open (i32.const 1) (i32.const 100) (i32.const 1) (i32.const 0) (i64.const 66) (i32.const 0)))
    (local.set $w (select (i32.load (i32.const 220)) (local.get $r) (i32.eqz (local.get $e))))
    (drop (call $open (i32.const 2) (i32.const 104) (i32.const 3) (i32.const 1) (i64.const 66) (i32.const 0)))
    (drop (call $open (i32.const 3) (i32.const 100) (i32.const 1) (i32.const 8) (i64.const 66) (i32.const 0)))
    (drop (call $open (i32.const 4) (i32.const 100) (i32.const 1) (i32.const 0) (i64.const 66) (i32.const 1)))
    (call $rec (i32.const 5) (call $fd_write (local.get $w) (i32.const 200) (i32.const 1) (i32.const 216)))
    (call $rec (i32.const 6) (call $fd_pwrite (local.get $w) (i32.const 200) (i32.const 1) (i64.const 0) (i32.const 216)))
    (call $rec (i32.const 7) (call $fd_filestat_set_size (local.get $w) (i64.const 0)))
    ;; ATIM_NOW | MTIM_NOW
    (call $rec (i32.const 8) (call $fd_filestat_set_times (local.get $w) (i64.const 0) (i64.const 0) (i32.const 10)))
    (call $rec (i32.const 9) (call $fd_allocate (local.get $w) (i64.const 0) (i64.const 100)))
    (call $rec (i32.const 10) (call $path_create_directory (i32.const 3) (i32.const 108) (i32.const 6)))
    (call $rec (i32.const 11) (call $path_filestat_set_times (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 1)
      (i64.const 0) (i64.const 0) (i32.const 10)))
    (call $rec (i32.const 12) (call $path_symlink (i32.const 100) (i32.const 1) (i32.const 3) (i32.const 124) (i32.const 1)))
    (call $rec (i32.const 13) (call $path_link (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 3) (i32.const 128) (i32.const 1)))
    (call $rec (i32.const 14) (call $path_rename (i32.const 3) (i32.const 116) (i32.const 2) (i32.const 3) (i32.const 120) (i32.const 1)))
    (call $rec (i32.const 15) (call $path_unlink_file (i32.const 3) (i32.const 132) (i32.const 1)))
    (call $rec (i32.const 16) (call $path_remove_directory (i32.const 3) (i32.const 136) (i32.const 1)))
    (drop (call $fd_write (i32.const 1) (i32.const 208) (i32.const 1) (i32.const 216)))))
