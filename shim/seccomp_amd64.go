package shim

import "golang.org/x/sys/unix"

const auditArch = unix.AUDIT_ARCH_X86_64

// allowlist is every system call the runner makes once its workload runs,
// found by tracing the examples and the Go standard-library conformance
// suite, keyed by number, each with the rule its arguments must meet and
// named for who needs it. Compilation, process start and exec
// happen before the filter and need none of their calls here.
func allowlist() Rules {
	const (
		goRT  = "Go runtime: scheduler, memory, signals"
		files = "WASI files, confined beneath their preopens"
		io    = "stdio and open files"
		clock = "WASI clocks and sleeps"
	)
	return Rules{
		unix.SYS_CLONE3:            {Name: "clone3", Errno: unix.ENOSYS, Why: "glibc's pthread_create tries clone3 first; its flags are in memory a filter cannot read, so answer ENOSYS and glibc falls back to clone, which is checked"},
		unix.SYS_READ:              {Name: "read", Rule: MatchAll{}, Why: io},
		unix.SYS_WRITE:             {Name: "write", Rule: MatchAll{}, Why: io},
		unix.SYS_READV:             {Name: "readv", Rule: MatchAll{}, Why: io},
		unix.SYS_WRITEV:            {Name: "writev", Rule: MatchAll{}, Why: io},
		unix.SYS_PREAD64:           {Name: "pread64", Rule: MatchAll{}, Why: io},
		unix.SYS_PWRITE64:          {Name: "pwrite64", Rule: MatchAll{}, Why: io},
		unix.SYS_LSEEK:             {Name: "lseek", Rule: MatchAll{}, Why: io},
		unix.SYS_CLOSE:             {Name: "close", Rule: MatchAll{}, Why: io},
		unix.SYS_FSTAT:             {Name: "fstat", Rule: MatchAll{}, Why: io},
		unix.SYS_FCNTL:             {Name: "fcntl", Rule: MatchAll{}, Why: io + "; Go sets descriptors non-blocking"},
		unix.SYS_IOCTL:             {Name: "ioctl", Rule: MatchAll{}, Why: io + "; wazero asks whether stdio is a terminal"},
		unix.SYS_FSYNC:             {Name: "fsync", Rule: MatchAll{}, Why: io},
		unix.SYS_FDATASYNC:         {Name: "fdatasync", Rule: MatchAll{}, Why: io},
		unix.SYS_FTRUNCATE:         {Name: "ftruncate", Rule: MatchAll{}, Why: io},
		unix.SYS_FALLOCATE:         {Name: "fallocate", Rule: MatchAll{}, Why: io},
		unix.SYS_GETDENTS64:        {Name: "getdents64", Rule: MatchAll{}, Why: files},
		unix.SYS_OPENAT:            {Name: "openat", Rule: MatchAll{}, Why: files},
		unix.SYS_OPENAT2:           {Name: "openat2", Rule: MatchAll{}, Why: files + "; the RESOLVE_BENEATH check"},
		unix.SYS_NEWFSTATAT:        {Name: "newfstatat", Rule: MatchAll{}, Why: files},
		unix.SYS_MKDIRAT:           {Name: "mkdirat", Rule: MatchAll{}, Why: files},
		unix.SYS_UNLINKAT:          {Name: "unlinkat", Rule: MatchAll{}, Why: files},
		unix.SYS_RENAMEAT:          {Name: "renameat", Rule: MatchAll{}, Why: files},
		unix.SYS_RENAMEAT2:         {Name: "renameat2", Rule: MatchAll{}, Why: files},
		unix.SYS_LINKAT:            {Name: "linkat", Rule: MatchAll{}, Why: files},
		unix.SYS_SYMLINKAT:         {Name: "symlinkat", Rule: MatchAll{}, Why: files},
		unix.SYS_READLINKAT:        {Name: "readlinkat", Rule: MatchAll{}, Why: files},
		unix.SYS_FCHMODAT:          {Name: "fchmodat", Rule: MatchAll{}, Why: files},
		unix.SYS_UTIMENSAT:         {Name: "utimensat", Rule: MatchAll{}, Why: files},
		unix.SYS_FCHMOD:            {Name: "fchmod", Rule: MatchAll{}, Why: files},
		unix.SYS_CLOCK_GETTIME:     {Name: "clock_gettime", Rule: MatchAll{}, Why: clock},
		unix.SYS_CLOCK_GETRES:      {Name: "clock_getres", Rule: MatchAll{}, Why: clock},
		unix.SYS_CLOCK_NANOSLEEP:   {Name: "clock_nanosleep", Rule: MatchAll{}, Why: clock},
		unix.SYS_NANOSLEEP:         {Name: "nanosleep", Rule: MatchAll{}, Why: clock + "; Go runtime"},
		unix.SYS_GETRANDOM:         {Name: "getrandom", Rule: MatchAll{}, Why: "WASI random_get"},
		unix.SYS_FUTEX:             {Name: "futex", Rule: MatchAll{}, Why: goRT},
		unix.SYS_SCHED_YIELD:       {Name: "sched_yield", Rule: MatchAll{}, Why: goRT + "; WASI sched_yield"},
		unix.SYS_SCHED_GETAFFINITY: {Name: "sched_getaffinity", Rule: MatchAll{}, Why: goRT},
		unix.SYS_MMAP:              {Name: "mmap", Rule: MatchAll{}, Why: goRT + "; wasm memory"},
		unix.SYS_MUNMAP:            {Name: "munmap", Rule: MatchAll{}, Why: goRT},
		unix.SYS_MPROTECT:          {Name: "mprotect", Rule: MatchAll{}, Why: goRT},
		unix.SYS_MADVISE:           {Name: "madvise", Rule: MatchAll{}, Why: goRT},
		unix.SYS_MREMAP:            {Name: "mremap", Rule: MatchAll{}, Why: goRT},
		unix.SYS_RT_SIGACTION:      {Name: "rt_sigaction", Rule: MatchAll{}, Why: goRT},
		unix.SYS_RT_SIGPROCMASK:    {Name: "rt_sigprocmask", Rule: MatchAll{}, Why: goRT},
		unix.SYS_RT_SIGRETURN:      {Name: "rt_sigreturn", Rule: MatchAll{}, Why: goRT},
		unix.SYS_SIGALTSTACK:       {Name: "sigaltstack", Rule: MatchAll{}, Why: goRT},
		unix.SYS_RESTART_SYSCALL:   {Name: "restart_syscall", Rule: MatchAll{}, Why: "the kernel: a sleep or wait that a stop (SIGSTOP, Ctrl-Z, a cgroup freeze, a checkpoint) interrupted resumes through it on SIGCONT or thaw"},
		unix.SYS_GETPID:            {Name: "getpid", Rule: MatchAll{}, Why: goRT},
		unix.SYS_GETTID:            {Name: "gettid", Rule: MatchAll{}, Why: goRT},
		unix.SYS_TGKILL:            {Name: "tgkill", Rule: MatchAll{}, Why: goRT + ": preemption signals to its own threads"},
		unix.SYS_SET_ROBUST_LIST:   {Name: "set_robust_list", Rule: MatchAll{}, Why: goRT + ": new threads"},
		unix.SYS_RSEQ:              {Name: "rseq", Rule: MatchAll{}, Why: goRT + ": new threads"},
		unix.SYS_EPOLL_CREATE1:     {Name: "epoll_create1", Rule: MatchAll{}, Why: goRT + ": netpoller, started by the first file opened"},
		unix.SYS_EVENTFD2:          {Name: "eventfd2", Rule: MatchAll{}, Why: goRT + ": netpoller wake-ups"},
		unix.SYS_EPOLL_CTL:         {Name: "epoll_ctl", Rule: MatchAll{}, Why: goRT + ": netpoller for pipes"},
		unix.SYS_EPOLL_PWAIT:       {Name: "epoll_pwait", Rule: MatchAll{}, Why: goRT + ": netpoller for pipes"},
		unix.SYS_EXIT:              {Name: "exit", Rule: MatchAll{}, Why: goRT + ": threads end"},
		unix.SYS_EXIT_GROUP:        {Name: "exit_group", Rule: MatchAll{}, Why: "the runner ends"},
		unix.SYS_CLONE:             {Name: "clone", Rule: PerArg{FlagsSet("CLONE_THREAD", unix.CLONE_THREAD)}, Why: goRT + ": new threads, never a new process"},
	}
}
