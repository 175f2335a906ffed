;; Host calls in a loop, for the gate's per-call benchmarks: each export
;; makes n turns of one WASI function (or of a pair, where one call undoes
;; the other), every result checked (a failing call traps). Stdout and
;; stdin are the host's; the first preopen (3) is a directory holding the
;; 16-byte file f and the symbolic link l to it. The exports on a file
;; open f once (all rights) before their loop.
;;   write: fd_write of 16 bytes to stdout; clock: clock_time_get;
;;   read: fd_read of 16 bytes from stdin; fdstat: fd_fdstat_get of stdout;
;;   stat: path_filestat_get of "f"; open: path_open of "f" and fd_close
;;   of it (a pair); poll: poll_oneoff of one relative clock of 0 ns;
;;   advise: fd_advise NORMAL of f; allocate: fd_allocate of f's 16 bytes;
;;   datasync, sync: fd_datasync, fd_sync of f; setflags:
;;   fd_fdstat_set_flags 0 of f; setrights: fd_fdstat_set_rights of f to
;;   the rights it has (unchecked: wazero answers ENOSYS); filestat:
;;   fd_filestat_get of f; setsize: fd_filestat_set_size of f to 16;
;;   settimes: fd_filestat_set_times of f (both times given);
;;   pread, pwrite: 16 bytes of f at 0; prestat: fd_prestat_get of 3;
;;   dirname: fd_prestat_dir_name of 3 ("/"); readdir: fd_readdir of 3
;;   from cookie 0 into 4 KiB; renumber: path_open of "f" and fd_renumber
;;   of it onto the f opened first (a pair); seek: fd_seek of f to 0;
;;   tell: fd_tell of f; mkdir: path_create_directory and
;;   path_remove_directory of "d" (a pair); pathtimes:
;;   path_filestat_set_times of "f"; link: path_link of "f" to "g" and
;;   path_unlink_file of "g" (a pair); readlink: path_readlink of "l"
;;   into 64 bytes; rename: path_rename of "f" to "g" and back (a pair);
;;   symlink: path_symlink "f" as "s" and path_unlink_file of "s" (a pair).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_advise" (func $fd_advise (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate" (func $fd_allocate (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_datasync" (func $fd_datasync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_sync" (func $fd_sync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $fd_fdstat_set_flags (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_rights" (func $fd_fdstat_set_rights (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fd_filestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size" (func $fd_filestat_set_size (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_times" (func $fd_filestat_set_times (param i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pread" (func $fd_pread (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name" (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $fd_renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_tell" (func $fd_tell (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory" (func $path_remove_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times" (func $path_filestat_set_times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link" (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_readlink" (func $path_readlink (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; an iovec of 16 bytes at 256
  (data (i32.const 0) "\00\01\00\00\10\00\00\00")
  (data (i32.const 256) "0123456789abcde\n")
  ;; the names "f", "g", "d", "s" and "l"
  (data (i32.const 512) "f")
  (data (i32.const 520) "g")
  (data (i32.const 528) "d")
  (data (i32.const 536) "s")
  (data (i32.const 544) "l")
  ;; a subscription: userdata 0, tag CLOCK, clock MONOTONIC, timeout 0, relative
  (data (i32.const 2048) "\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\01")
  (func $check (param $errno i32)
    (if (local.get $errno) (then unreachable)))
  ;; $openf opens f with every right and returns its descriptor.
  (func $openf (result i32)
    (call $check (call $path_open (i32.const 3) (i32.const 1) (i32.const 512) (i32.const 1)
      (i32.const 0) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 96)))
    (i32.load (i32.const 96)))
  (func (export "write") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "clock") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 128)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "read") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "fdstat") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_fdstat_get (i32.const 1) (i32.const 1024)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "stat") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_filestat_get (i32.const 3) (i32.const 0) (i32.const 512) (i32.const 1) (i32.const 1024)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "open") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 512) (i32.const 1)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 96)))
        (call $check (call $fd_close (i32.load (i32.const 96))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "poll") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $poll_oneoff (i32.const 2048) (i32.const 2112) (i32.const 1) (i32.const 2200)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "advise") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_advise (local.get $fd) (i64.const 0) (i64.const 16) (i32.const 0)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "allocate") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_allocate (local.get $fd) (i64.const 0) (i64.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "datasync") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_datasync (local.get $fd)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "sync") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_sync (local.get $fd)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "setflags") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_fdstat_set_flags (local.get $fd) (i32.const 0)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "setrights") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (drop (call $fd_fdstat_set_rights (local.get $fd) (i64.const 0x1fffffff) (i64.const 0x1fffffff)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "filestat") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_filestat_get (local.get $fd) (i32.const 1024)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "setsize") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_filestat_set_size (local.get $fd) (i64.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "settimes") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_filestat_set_times (local.get $fd) (i64.const 1000000000) (i64.const 2000000000) (i32.const 5)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "pread") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_pread (local.get $fd) (i32.const 0) (i32.const 1) (i64.const 0) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "pwrite") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_pwrite (local.get $fd) (i32.const 0) (i32.const 1) (i64.const 0) (i32.const 64)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "prestat") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_prestat_get (i32.const 3) (i32.const 1200)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "dirname") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_prestat_dir_name (i32.const 3) (i32.const 1200) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "readdir") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_readdir (i32.const 3) (i32.const 4096) (i32.const 4096) (i64.const 0) (i32.const 1200)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "renumber") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 512) (i32.const 1)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 96)))
        (call $check (call $fd_renumber (i32.load (i32.const 96)) (local.get $fd)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "seek") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_seek (local.get $fd) (i64.const 0) (i32.const 0) (i32.const 1200)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "tell") (param $n i32) (local $i i32) (local $fd i32)
    (local.set $fd (call $openf))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $fd_tell (local.get $fd) (i32.const 1200)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "mkdir") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_create_directory (i32.const 3) (i32.const 528) (i32.const 1)))
        (call $check (call $path_remove_directory (i32.const 3) (i32.const 528) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "pathtimes") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_filestat_set_times (i32.const 3) (i32.const 1) (i32.const 512) (i32.const 1) (i64.const 1000000000) (i64.const 2000000000) (i32.const 5)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "link") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_link (i32.const 3) (i32.const 0) (i32.const 512) (i32.const 1) (i32.const 3) (i32.const 520) (i32.const 1)))
        (call $check (call $path_unlink_file (i32.const 3) (i32.const 520) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "readlink") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_readlink (i32.const 3) (i32.const 544) (i32.const 1) (i32.const 4096) (i32.const 64) (i32.const 1200)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "rename") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_rename (i32.const 3) (i32.const 512) (i32.const 1) (i32.const 3) (i32.const 520) (i32.const 1)))
        (call $check (call $path_rename (i32.const 3) (i32.const 520) (i32.const 1) (i32.const 3) (i32.const 512) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again))))
  (func (export "symlink") (param $n i32) (local $i i32)
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $check (call $path_symlink (i32.const 512) (i32.const 1) (i32.const 3) (i32.const 536) (i32.const 1)))
        (call $check (call $path_unlink_file (i32.const 3) (i32.const 536) (i32.const 1)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))))
