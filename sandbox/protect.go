package sandbox

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// DumpSignals are the signals on which the Go runtime, left to itself,
// prints every goroutine's stack to stderr and, under GOTRACEBACK=crash,
// dumps core: SIGQUIT and SIGABRT, and the fault signals when another
// process sends them. A protected process never lets them reach the Go
// runtime's default handling.
var DumpSignals = []os.Signal{syscall.SIGQUIT, syscall.SIGABRT, syscall.SIGILL, syscall.SIGTRAP,
	syscall.SIGBUS, syscall.SIGFPE, syscall.SIGSEGV, syscall.SIGSYS, syscall.SIGSTKFLT}

// Protect keeps the calling process's memory from the two ways it could
// leave the process other than through its own writes. The process is
// made not dumpable (PR_SET_DUMPABLE 0): the kernel writes no core file
// for it whatever the core pattern or the host's suid_dumpable, and its
// /proc/PID/mem, its other /proc files and ptrace are closed to every
// process without CAP_SYS_PTRACE, those of its own user included. Its
// core-file limit (RLIMIT_CORE) is set to zero, soft and hard, so that no
// child it starts can raise it again.
//
// Both hold for the process's threads and are inherited by a fork; the
// limit survives exec, but dumpability does not: a program a protected
// process executes must call Protect itself, before it reads anything
// worth protecting. Protect is checked: it reads both settings back.
func Protect() error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: 0, Max: 0}); err != nil {
		return fmt.Errorf("setting the core-file limit to zero: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("making the process not dumpable: %w", err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil || lim.Cur != 0 || lim.Max != 0 {
		return fmt.Errorf("the core-file limit is %d/%d after setting it to zero (%v)", lim.Cur, lim.Max, err)
	}
	if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err != nil || d != 0 {
		return fmt.Errorf("the process is still dumpable (%d, %v)", d, err)
	}
	return nil
}
