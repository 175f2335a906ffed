package shim

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
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

// Syscall is one row of the seccomp allowlist.
type Syscall struct {
	Name string
	Nr   uintptr
	// ThreadsOnly allows clone only with CLONE_THREAD: new threads of the
	// runner, never a new process.
	ThreadsOnly bool
	// Errno, if set, is returned instead of running the call, in every
	// action: for a call whose arguments a filter cannot inspect but whose
	// caller has a fallback (glibc retries clone3 as clone on ENOSYS).
	Errno unix.Errno
	// Why says who needs it.
	Why string
}

// ErrSeccompUnsupported is returned where no allowlist exists for the
// machine's architecture.
var ErrSeccompUnsupported = errors.New("no seccomp allowlist for " + runtime.GOARCH)

// Allowlist returns the system calls the runner may make once its workload
// starts (after compilation), sorted by number. No socket call is in it.
func Allowlist() ([]Syscall, error) {
	list := allowlist()
	if list == nil {
		return nil, ErrSeccompUnsupported
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Nr < list[j].Nr })
	return list, nil
}

// seccomp_data offsets (linux/seccomp.h).
const (
	offNr    = 0
	offArch  = 4
	offArg0  = 16 // low 32 bits on a little-endian machine
	maxJumps = 255
)

// Program assembles the filter: the architecture must be the one the
// allowlist was written for, the call must be listed (clone only for
// threads), and anything else gets action.
func Program(action SeccompAction) ([]unix.SockFilter, error) {
	list, err := Allowlist()
	if err != nil {
		return nil, err
	}
	deny := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	if action == SeccompKill {
		deny = unix.SECCOMP_RET_KILL_PROCESS
	}
	var plain, answered []Syscall
	var clone *Syscall
	for i := range list {
		switch {
		case list[i].ThreadsOnly:
			clone = &list[i]
		case list[i].Errno != 0:
			answered = append(answered, list[i])
		default:
			plain = append(plain, list[i])
		}
	}
	if len(plain)+8 > maxJumps {
		return nil, fmt.Errorf("seccomp: %d calls is too many for one jump table", len(plain))
	}
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf int) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: uint8(jt), Jf: uint8(jf), K: k}
	}
	// Layout, by index:
	//   0      ld arch
	//   1      jeq AUDIT_ARCH ? 2 : kill
	//   2      ld nr
	//   3..    jeq nr_j ? next : skip; ret errno_j (two per answered call)
	//   h..    jeq nr_i ? allow : next           (one per plain call)
	//   c      jeq clone ? c+2 : c+1             (if clone is listed)
	//   c+1    ret deny
	//   c+2    ld arg0
	//   c+3    jset CLONE_THREAD ? allow : deny
	//   d      ret deny
	//   a      ret allow
	//   k      ret kill
	var f []unix.SockFilter
	n := len(plain)
	tail := 1 // ret deny
	if clone != nil {
		tail = 5 // jeq clone, ret deny, ld arg0, jset, ret deny
	}
	head := 3 + 2*len(answered)
	allowAt := head + n + tail
	killAt := allowAt + 1
	f = append(f, stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch))
	f = append(f, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, auditArch, 0, killAt-2))
	f = append(f, stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr))
	for _, s := range answered {
		f = append(f, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(s.Nr), 0, 1))
		f = append(f, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(s.Errno)))
	}
	for i, s := range plain {
		at := head + i
		f = append(f, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(s.Nr), allowAt-at-1, 0))
	}
	if clone != nil {
		at := len(f)
		f = append(f, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(clone.Nr), 1, 0))
		f = append(f, stmt(unix.BPF_RET|unix.BPF_K, deny))
		f = append(f, stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0))
		f = append(f, jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, unix.CLONE_THREAD, allowAt-(at+3)-1, 0))
		f = append(f, stmt(unix.BPF_RET|unix.BPF_K, deny))
	} else {
		f = append(f, stmt(unix.BPF_RET|unix.BPF_K, deny))
	}
	f = append(f, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW))
	f = append(f, stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS))
	if len(f) != killAt+1 {
		return nil, fmt.Errorf("seccomp: program laid out as %d instructions, want %d", len(f), killAt+1)
	}
	return f, nil
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
