package shim

import "golang.org/x/sys/unix"

const auditArch = unix.AUDIT_ARCH_X86_64

// allowlist is every system call the runner makes once its workload runs,
// found by tracing the examples and the Go standard-library conformance
// suite, and named for who needs it. Compilation, process start and exec
// happen before the filter and need none of their calls here.
func allowlist() []Syscall {
	const (
		goRT  = "Go runtime: scheduler, memory, signals"
		files = "WASI files, confined beneath their preopens"
		io    = "stdio and open files"
		clock = "WASI clocks and sleeps"
	)
	return []Syscall{
		{Name: "clone3", Nr: unix.SYS_CLONE3, Errno: unix.ENOSYS, Why: "glibc's pthread_create tries clone3 first; its flags are in memory a filter cannot read, so answer ENOSYS and glibc falls back to clone, which is checked"},
		{"read", unix.SYS_READ, false, 0, io},
		{"write", unix.SYS_WRITE, false, 0, io},
		{"readv", unix.SYS_READV, false, 0, io},
		{"writev", unix.SYS_WRITEV, false, 0, io},
		{"pread64", unix.SYS_PREAD64, false, 0, io},
		{"pwrite64", unix.SYS_PWRITE64, false, 0, io},
		{"lseek", unix.SYS_LSEEK, false, 0, io},
		{"close", unix.SYS_CLOSE, false, 0, io},
		{"fstat", unix.SYS_FSTAT, false, 0, io},
		{"fcntl", unix.SYS_FCNTL, false, 0, io + "; Go sets descriptors non-blocking"},
		{"ioctl", unix.SYS_IOCTL, false, 0, io + "; wazero asks whether stdio is a terminal"},
		{"fsync", unix.SYS_FSYNC, false, 0, io},
		{"fdatasync", unix.SYS_FDATASYNC, false, 0, io},
		{"ftruncate", unix.SYS_FTRUNCATE, false, 0, io},
		{"fallocate", unix.SYS_FALLOCATE, false, 0, io},
		{"getdents64", unix.SYS_GETDENTS64, false, 0, files},
		{"openat", unix.SYS_OPENAT, false, 0, files},
		{"openat2", unix.SYS_OPENAT2, false, 0, files + "; the RESOLVE_BENEATH check"},
		{"newfstatat", unix.SYS_NEWFSTATAT, false, 0, files},
		{"mkdirat", unix.SYS_MKDIRAT, false, 0, files},
		{"unlinkat", unix.SYS_UNLINKAT, false, 0, files},
		{"renameat", unix.SYS_RENAMEAT, false, 0, files},
		{"renameat2", unix.SYS_RENAMEAT2, false, 0, files},
		{"linkat", unix.SYS_LINKAT, false, 0, files},
		{"symlinkat", unix.SYS_SYMLINKAT, false, 0, files},
		{"readlinkat", unix.SYS_READLINKAT, false, 0, files},
		{"fchmodat", unix.SYS_FCHMODAT, false, 0, files},
		{"utimensat", unix.SYS_UTIMENSAT, false, 0, files},
		{"fchmod", unix.SYS_FCHMOD, false, 0, files},
		{"clock_gettime", unix.SYS_CLOCK_GETTIME, false, 0, clock},
		{"clock_getres", unix.SYS_CLOCK_GETRES, false, 0, clock},
		{"clock_nanosleep", unix.SYS_CLOCK_NANOSLEEP, false, 0, clock},
		{"nanosleep", unix.SYS_NANOSLEEP, false, 0, clock + "; Go runtime"},
		{"getrandom", unix.SYS_GETRANDOM, false, 0, "WASI random_get"},
		{"futex", unix.SYS_FUTEX, false, 0, goRT},
		{"sched_yield", unix.SYS_SCHED_YIELD, false, 0, goRT + "; WASI sched_yield"},
		{"sched_getaffinity", unix.SYS_SCHED_GETAFFINITY, false, 0, goRT},
		{"mmap", unix.SYS_MMAP, false, 0, goRT + "; wasm memory"},
		{"munmap", unix.SYS_MUNMAP, false, 0, goRT},
		{"mprotect", unix.SYS_MPROTECT, false, 0, goRT},
		{"madvise", unix.SYS_MADVISE, false, 0, goRT},
		{"mremap", unix.SYS_MREMAP, false, 0, goRT},
		{"rt_sigaction", unix.SYS_RT_SIGACTION, false, 0, goRT},
		{"rt_sigprocmask", unix.SYS_RT_SIGPROCMASK, false, 0, goRT},
		{"rt_sigreturn", unix.SYS_RT_SIGRETURN, false, 0, goRT},
		{"sigaltstack", unix.SYS_SIGALTSTACK, false, 0, goRT},
		{"restart_syscall", unix.SYS_RESTART_SYSCALL, false, 0, "the kernel: a sleep or wait that a stop (SIGSTOP, Ctrl-Z, a cgroup freeze, a checkpoint) interrupted resumes through it on SIGCONT or thaw"},
		{"getpid", unix.SYS_GETPID, false, 0, goRT},
		{"gettid", unix.SYS_GETTID, false, 0, goRT},
		{"tgkill", unix.SYS_TGKILL, false, 0, goRT + ": preemption signals to its own threads"},
		{"set_robust_list", unix.SYS_SET_ROBUST_LIST, false, 0, goRT + ": new threads"},
		{"rseq", unix.SYS_RSEQ, false, 0, goRT + ": new threads"},
		{"epoll_create1", unix.SYS_EPOLL_CREATE1, false, 0, goRT + ": netpoller, started by the first file opened"},
		{"eventfd2", unix.SYS_EVENTFD2, false, 0, goRT + ": netpoller wake-ups"},
		{"epoll_ctl", unix.SYS_EPOLL_CTL, false, 0, goRT + ": netpoller for pipes"},
		{"epoll_pwait", unix.SYS_EPOLL_PWAIT, false, 0, goRT + ": netpoller for pipes"},
		{"exit", unix.SYS_EXIT, false, 0, goRT + ": threads end"},
		{"exit_group", unix.SYS_EXIT_GROUP, false, 0, "the runner ends"},
		{"clone", unix.SYS_CLONE, true, 0, goRT + ": new threads, never a new process"},
	}
}
