package shim

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SeccompAction is what the filter does with a system call that is not in
// its allowlist.
type SeccompAction int

const (
	// SeccompOff installs no filter.
	SeccompOff SeccompAction = iota
	// SeccompErrno makes a refused call fail with EPERM.
	SeccompErrno
	// SeccompKill kills the whole process (SIGSYS) on a refused call.
	SeccompKill
)

// String names the action as 'launch' prints it.
func (a SeccompAction) String() string {
	switch a {
	case SeccompOff:
		return "off"
	case SeccompErrno:
		return "errno(EPERM)"
	case SeccompKill:
		return "kill-process"
	}
	return fmt.Sprintf("seccomp(%d)", int(a))
}

// ErrSeccompUnsupported is returned where no allowlist exists for the
// machine's architecture.
var ErrSeccompUnsupported = errors.New("no seccomp allowlist for " + runtime.GOARCH)

// Allowlist returns the system calls the runner may make once its workload
// starts (after compilation), by number, each with the rule its arguments
// must meet. No socket call is in it. Each call returns a fresh map.
func Allowlist() (Rules, error) {
	list := allowlist()
	if list == nil {
		return nil, ErrSeccompUnsupported
	}
	return list, nil
}

// Describe says in words what the runner's filter does with system call nr
// of this machine: how it is allowed or answered, or that it is refused.
func Describe(nr uintptr) string {
	if s, ok := allowlist()[nr]; ok {
		return s.Describe()
	}
	return "refused"
}

// Program assembles the runner's filter (Compile over Allowlist): the
// architecture must be the one the allowlist was written for, the call
// must be listed and its arguments meet its rule (clone only for threads),
// and anything else gets action. Only SeccompErrno and SeccompKill have a
// program; any other action is an error.
func Program(action SeccompAction) ([]unix.SockFilter, error) {
	var deny uint32
	switch action {
	case SeccompErrno:
		deny = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	case SeccompKill:
		deny = unix.SECCOMP_RET_KILL_PROCESS
	default:
		return nil, fmt.Errorf("seccomp: no filter program for the action %v", action)
	}
	list, err := Allowlist()
	if err != nil {
		return nil, err
	}
	return Compile(list, auditArch, deny)
}

// Confine installs the filter on every thread of the process (TSYNC), after
// setting no_new_privs. It cannot be undone. With SeccompOff it does nothing.
func Confine(action SeccompAction) error {
	if action == SeccompOff {
		return nil
	}
	prog, err := Program(action)
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("seccomp: no_new_privs: %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("seccomp: installing the filter: %w", errno)
	}
	if r != 0 {
		return fmt.Errorf("seccomp: thread %d could not be synchronised", r)
	}
	return nil
}
