;; WASI preview 1 calls where plain wazero differs from the conformance
;; suite, each once, against the first preopen (fd 3, writable, empty) and
;; the second (fd 4, another writable mount).
;; Each check writes one byte to stdout (fd 1, then fd 4, where check 43
;; moves it), in this order:
;;    0 sock_shutdown(stdin): the errno (ENOTSOCK)
;;    1 sock_shutdown(fd 99): the errno (EBADF)
;;    2 sock_recv(fd 99): the errno (EBADF)
;;    3 sock_send(stdout): the errno (ENOTSOCK)
;;    4 sock_accept(fd 99): the errno (EBADF)
;;    5 fd_prestat_dir_name(3) into 0 bytes: the errno (ENAMETOOLONG)
;;    6 fd_prestat_dir_name(3) into 64 bytes: the errno (0)
;;    7 fd_renumber(stdout, fd 99): the errno (EBADF)
;;    8 path_symlink target -> l: the errno (0)
;;    9 path_readlink l into 4 bytes: the errno (0)
;;   10 ... the bytes it says it used (4)
;;   11 path_link with SYMLINK_FOLLOW: the errno (EINVAL)
;;   12 path_link to "h2/": the errno (ENOENT)
;;   13 poll_oneoff FD_WRITE stdout, FD_WRITE stderr, a 60 s clock: the errno (0)
;;   14 ... the events (2)
;;   15 ... the first event's error (0)
;;   16 ... the second event's error (0)
;;   17 poll_oneoff FD_WRITE on fd 99: the first event's error (EBADF)
;;   18 path_open a, O_CREAT, FDFLAGS_APPEND: the errno (0)
;;   19 fd_write "xyz" then fd_pwrite "A" at offset 0: fd_pwrite's errno (0)
;;   20 fd_fdstat_get a: its fs_flags (APPEND, 1)
;;   21 path_open s, O_CREAT, FDFLAGS_DSYNC|FDFLAGS_SYNC: the errno (0)
;;   22 fd_fdstat_get s: its fs_flags (DSYNC|SYNC, 0x12)
;;   23 path_open a with FD_READ alone: the errno (0)
;;   24 ... whether its fdstat's base rights hold FD_WRITE (0)
;;   25 ... fd_write to it: the errno (EBADF, as POSIX)
;;   26 fd_fdstat_set_rights of the first a to FD_READ alone: the errno (0)
;;   27 ... fd_write to it: the errno (ENOTCAPABLE)
;;   28 ... fd_fdstat_set_rights back to FD_READ|FD_WRITE: the errno (ENOTCAPABLE)
;;   29 fd_fdstat_set_rights of fd 3 without PATH_FILESTAT_SET_SIZE: the errno (0)
;;   30 ... path_open a with O_TRUNC: the errno (ENOTCAPABLE)
;;   31 ... path_open a asking for every right: the errno (0)
;;   32 fd_allocate(4, 0, 1), a directory: the errno (EISDIR)
;;   33 path_link a on fd 3 to a on fd 4 (the second preopen, another
;;      mount): the errno (EXDEV)
;;   34 path_rename a on fd 3 to a on fd 4: the errno (EXDEV)
;;   35 poll_oneoff with 0x5555556 subscriptions (48 times that wraps to
;;      32 in 32 bits): the errno (EFAULT)
;;   36 path_filestat_set_times l (the link to the missing "target")
;;      without SYMLINK_FOLLOW, mtime 10^18 ns: the errno (0); the host
;;      checks the link's own mtime
;;   37 path_open "." beneath fd 3, a directory: the errno (0)
;;   38 fd_renumber it onto fd 4, the second preopen: the errno (0)
;;   39 fd_fdstat_get of its old number: the errno (EBADF)
;;   40 fd_fdstat_get 4: its filetype (DIRECTORY, 3)
;;   41 fd_renumber 4 onto itself: the errno (0)
;;   42 fd_fdstat_get 4 after: the errno (0)
;;   43 fd_renumber stdout onto fd 4: the errno (0: wazero keeps its
;;      preopens where they are, the gate's numbering moves it); every
;;      byte after this one goes to fd 4
;;   44 path_symlink target -> "h2/", a name that does not exist ending in
;;      /: the errno (ENOENT)
;;   45-49 on stdout, at fd 4 now:
;;   45 fd_allocate(stdout, 0, 1): the errno (ESPIPE, as on a pipe)
;;   46 fd_filestat_set_size(stdout, 0): the errno (EINVAL)
;;   47 fd_fdstat_set_flags(stdout, NONBLOCK): the errno (ENOTSUP)
;;   48 fd_seek(stdout, 0, SET): the errno (ESPIPE)
;;   49 fd_filestat_set_times(stdout, ATIM|MTIM): the errno (ENOTSUP; wazero
;;      trapped on a nil file system)
;;   50 fd_fdstat_get 1, stdout's old number: the errno (EBADF)
;;   51 path_open "." beneath fd 3: the descriptor it returns (1, the lowest
;;      free number, which wazero numbers otherwise)
;;   52 fd_renumber 3, the first preopen (a mount), onto it: the errno (0)
;;   53 fd_prestat_dir_name 1 into 64 bytes: the errno (0: still a preopen)
;;   54 fd_fdstat_get 3: the errno (EBADF)
;;   55 poll_oneoff FD_WRITE 4 (stdout now), FD_WRITE 3 (closed): the errno (0)
;;   56 ... the first event's error (0)
;;   57 ... the second event's error (EBADF)
;;   58 ... the first subscription's descriptor after the call (4)
;;   59 path_open a beneath fd 1 (the moved mount): the descriptor it
;;      returns (3)
;; The readlink buffer's 4 bytes ("targ") follow, then a newline; the host
;; checks that the file a holds "Ayz".
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite"
    (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown"
    (func $sock_shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv"
    (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send"
    (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept"
    (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber"
    (func $fd_renumber (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_readlink"
    (func $path_readlink (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link"
    (func $path_link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get"
    (func $fd_fdstat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_rights"
    (func $fd_fdstat_set_rights (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_allocate"
    (func $fd_allocate (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename"
    (func $path_rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times"
    (func $path_filestat_set_times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size"
    (func $fd_filestat_set_size (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_flags"
    (func $fd_fdstat_set_flags (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek"
    (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_times"
    (func $fd_filestat_set_times (param i32 i64 i64 i32) (result i32)))
  (memory (export "memory") 1)
  ;; $stdout is stdout's descriptor: 1, then 4 from check 43.
  (global $stdout (mut i32) (i32.const 1))
  (data (i32.const 100) "target")
  (data (i32.const 110) "l")
  (data (i32.const 112) "h")
  (data (i32.const 114) "h2/")
  (data (i32.const 120) "a")
  (data (i32.const 124) "xyz")
  (data (i32.const 128) "A")
  (data (i32.const 130) "\n")
  (data (i32.const 132) "s")
  (data (i32.const 140) ".")

  ;; $emit writes one byte to stdout.
  (func $emit (param $b i32)
    (i32.store8 (i32.const 1000) (local.get $b))
    (call $out (i32.const 1000) (i32.const 1)))
  ;; $out writes n bytes at p to stdout.
  (func $out (param $p i32) (param $n i32)
    (i32.store (i32.const 1100) (local.get $p))
    (i32.store (i32.const 1104) (local.get $n))
    (drop (call $fd_write (global.get $stdout) (i32.const 1100) (i32.const 1) (i32.const 1200))))
  ;; $sub writes an FD_WRITE subscription on fd at p.
  (func $sub (param $p i32) (param $fd i32)
    (i64.store (local.get $p) (i64.extend_i32_u (local.get $fd)))
    (i32.store8 (i32.add (local.get $p) (i32.const 8)) (i32.const 2))
    (i32.store (i32.add (local.get $p) (i32.const 16)) (local.get $fd)))

  (func (export "_start")
    (call $emit (call $sock_shutdown (i32.const 0) (i32.const 2)))
    (call $emit (call $sock_shutdown (i32.const 99) (i32.const 2)))
    (call $emit (call $sock_recv (i32.const 99) (i32.const 1100) (i32.const 1) (i32.const 0) (i32.const 1200) (i32.const 1204)))
    (call $emit (call $sock_send (i32.const 1) (i32.const 1100) (i32.const 0) (i32.const 0) (i32.const 1200)))
    (call $emit (call $sock_accept (i32.const 99) (i32.const 0) (i32.const 1200)))
    (call $emit (call $fd_prestat_dir_name (i32.const 3) (i32.const 1300) (i32.const 0)))
    (call $emit (call $fd_prestat_dir_name (i32.const 3) (i32.const 1300) (i32.const 64)))
    (call $emit (call $fd_renumber (i32.const 1) (i32.const 99)))
    (call $emit (call $path_symlink (i32.const 100) (i32.const 6) (i32.const 3) (i32.const 110) (i32.const 1)))
    (call $emit (call $path_readlink (i32.const 3) (i32.const 110) (i32.const 1) (i32.const 1400) (i32.const 4) (i32.const 1204)))
    (call $emit (i32.load (i32.const 1204)))
    (call $emit (call $path_link (i32.const 3) (i32.const 1) (i32.const 110) (i32.const 1) (i32.const 3) (i32.const 112) (i32.const 1)))
    (call $emit (call $path_link (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 6) (i32.const 3) (i32.const 114) (i32.const 3)))
    ;; poll: FD_WRITE 1, FD_WRITE 2, and a relative 60 s monotonic clock
    (call $sub (i32.const 2000) (i32.const 1))
    (call $sub (i32.const 2048) (i32.const 2))
    (i64.store (i32.const 2096) (i64.const 7))
    (i32.store8 (i32.const 2104) (i32.const 0))
    (i32.store (i32.const 2112) (i32.const 1))
    (i64.store (i32.const 2120) (i64.const 60000000000))
    (call $emit (call $poll_oneoff (i32.const 2000) (i32.const 2200) (i32.const 3) (i32.const 1208)))
    (call $emit (i32.load (i32.const 1208)))
    (call $emit (i32.load16_u (i32.const 2208)))
    (call $emit (i32.load16_u (i32.const 2240)))
    (call $sub (i32.const 2000) (i32.const 99))
    (drop (call $poll_oneoff (i32.const 2000) (i32.const 2200) (i32.const 1) (i32.const 1208)))
    (call $emit (i32.load16_u (i32.const 2208)))
    ;; a, created, append, rights FD_READ|FD_SEEK|FD_WRITE (0x46: fd_pwrite
    ;; needs FD_SEEK too), fd at 1212
    (call $emit (call $path_open (i32.const 3) (i32.const 0) (i32.const 120) (i32.const 1)
      (i32.const 1) (i64.const 0x46) (i64.const 0) (i32.const 1) (i32.const 1212)))
    (i32.store (i32.const 1100) (i32.const 124))
    (i32.store (i32.const 1104) (i32.const 3))
    (drop (call $fd_write (i32.load (i32.const 1212)) (i32.const 1100) (i32.const 1) (i32.const 1200)))
    (i32.store (i32.const 1100) (i32.const 128))
    (i32.store (i32.const 1104) (i32.const 1))
    (call $emit (call $fd_pwrite (i32.load (i32.const 1212)) (i32.const 1100) (i32.const 1) (i64.const 0) (i32.const 1200)))
    (drop (call $fd_fdstat_get (i32.load (i32.const 1212)) (i32.const 2400)))
    (call $emit (i32.load16_u (i32.const 2402)))
    (call $emit (call $path_open (i32.const 3) (i32.const 0) (i32.const 132) (i32.const 1)
      (i32.const 1) (i64.const 0x40) (i64.const 0) (i32.const 0x12) (i32.const 1216)))
    (drop (call $fd_fdstat_get (i32.load (i32.const 1216)) (i32.const 2400)))
    (call $emit (i32.load16_u (i32.const 2402)))
    (call $emit (call $path_open (i32.const 3) (i32.const 0) (i32.const 120) (i32.const 1)
      (i32.const 0) (i64.const 0x2) (i64.const 0) (i32.const 0) (i32.const 1220)))
    (drop (call $fd_fdstat_get (i32.load (i32.const 1220)) (i32.const 2400)))
    (call $emit (i32.and (i32.shr_u (i32.load8_u (i32.const 2408)) (i32.const 6)) (i32.const 1)))
    (call $emit (call $fd_write (i32.load (i32.const 1220)) (i32.const 1100) (i32.const 1) (i32.const 1200)))
    (call $emit (call $fd_fdstat_set_rights (i32.load (i32.const 1212)) (i64.const 0x2) (i64.const 0)))
    (call $emit (call $fd_write (i32.load (i32.const 1212)) (i32.const 1100) (i32.const 1) (i32.const 1200)))
    (call $emit (call $fd_fdstat_set_rights (i32.load (i32.const 1212)) (i64.const 0x42) (i64.const 0)))
    (drop (call $fd_fdstat_get (i32.const 3) (i32.const 2400)))
    (call $emit (call $fd_fdstat_set_rights (i32.const 3)
      (i64.and (i64.load (i32.const 2408)) (i64.const 0xfffffffffff7ffff)) (i64.load (i32.const 2416))))
    (call $emit (call $path_open (i32.const 3) (i32.const 0) (i32.const 120) (i32.const 1)
      (i32.const 8) (i64.const 0x42) (i64.const 0) (i32.const 0) (i32.const 1224)))
    (call $emit (call $path_open (i32.const 3) (i32.const 0) (i32.const 120) (i32.const 1)
      (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 1224)))
    (call $emit (call $fd_allocate (i32.const 4) (i64.const 0) (i64.const 1)))
    (call $emit (call $path_link (i32.const 3) (i32.const 0) (i32.const 120) (i32.const 1)
      (i32.const 4) (i32.const 120) (i32.const 1)))
    (call $emit (call $path_rename (i32.const 3) (i32.const 120) (i32.const 1)
      (i32.const 4) (i32.const 120) (i32.const 1)))
    (call $emit (call $poll_oneoff (i32.const 2000) (i32.const 2200) (i32.const 0x5555556) (i32.const 1208)))
    (call $emit (call $path_filestat_set_times (i32.const 3) (i32.const 0) (i32.const 110) (i32.const 1)
      (i64.const 0) (i64.const 1000000000000000000) (i32.const 4)))
    (call $emit (call $path_open (i32.const 3) (i32.const 0) (i32.const 140) (i32.const 1)
      (i32.const 2) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 1228)))
    (call $emit (call $fd_renumber (i32.load (i32.const 1228)) (i32.const 4)))
    (call $emit (call $fd_fdstat_get (i32.load (i32.const 1228)) (i32.const 2400)))
    (drop (call $fd_fdstat_get (i32.const 4) (i32.const 2400)))
    (call $emit (i32.load8_u (i32.const 2400)))
    (call $emit (call $fd_renumber (i32.const 4) (i32.const 4)))
    (call $emit (call $fd_fdstat_get (i32.const 4) (i32.const 2400)))
    (global.set $stdout (i32.const 4))
    (call $emit (call $fd_renumber (i32.const 1) (i32.const 4)))
    (call $emit (call $path_symlink (i32.const 100) (i32.const 6) (i32.const 3) (i32.const 114) (i32.const 3)))
    (call $emit (call $fd_allocate (global.get $stdout) (i64.const 0) (i64.const 1)))
    (call $emit (call $fd_filestat_set_size (global.get $stdout) (i64.const 0)))
    (call $emit (call $fd_fdstat_set_flags (global.get $stdout) (i32.const 4)))
    (call $emit (call $fd_seek (global.get $stdout) (i64.const 0) (i32.const 0) (i32.const 2400)))
    (call $emit (call $fd_filestat_set_times (global.get $stdout) (i64.const 0) (i64.const 0) (i32.const 5)))
    (call $emit (call $fd_fdstat_get (i32.const 1) (i32.const 2400)))
    (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 140) (i32.const 1)
      (i32.const 2) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 1232)))
    (call $emit (i32.load (i32.const 1232)))
    (call $emit (call $fd_renumber (i32.const 3) (i32.load (i32.const 1232))))
    (call $emit (call $fd_prestat_dir_name (i32.const 1) (i32.const 1300) (i32.const 64)))
    (call $emit (call $fd_fdstat_get (i32.const 3) (i32.const 2400)))
    (call $sub (i32.const 2000) (i32.const 4))
    (call $sub (i32.const 2048) (i32.const 3))
    (call $emit (call $poll_oneoff (i32.const 2000) (i32.const 2200) (i32.const 2) (i32.const 1208)))
    (call $emit (i32.load16_u (i32.const 2208)))
    (call $emit (i32.load16_u (i32.const 2240)))
    (call $emit (i32.load (i32.const 2016)))
    (drop (call $path_open (i32.const 1) (i32.const 0) (i32.const 120) (i32.const 1)
      (i32.const 0) (i64.const 0x2) (i64.const 0) (i32.const 0) (i32.const 1236)))
    (call $emit (i32.load (i32.const 1236)))
    (call $out (i32.const 1400) (i32.const 4))
    (call $out (i32.const 130) (i32.const 1))))
