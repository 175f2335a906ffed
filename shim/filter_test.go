package shim

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// run evaluates a seccomp filter on one call, as the kernel's classic BPF
// interpreter does for the few instructions Program emits, and returns the
// action. An instruction of any other kind fails the test.
func run(t *testing.T, prog []unix.SockFilter, arch uint32, nr int32, arg0 uint64) uint32 {
	t.Helper()
	var data [64]byte // struct seccomp_data
	binary.LittleEndian.PutUint32(data[offNr:], uint32(nr))
	binary.LittleEndian.PutUint32(data[offArch:], arch)
	binary.LittleEndian.PutUint64(data[offArg0:], arg0)
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if acc == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			if acc&in.K != 0 {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("instruction %d: code %#x is not one Program emits", pc, in.Code)
		}
	}
	t.Fatal("the filter ran off its end")
	return 0
}

// TestFilterDecisions: what the filter answers, call by call. Every listed
// call is allowed (clone3 answered ENOSYS); a call of another architecture
// (the i386 ABI, where numbers mean other calls) kills the process whatever
// the action; x32 numbers, socket, and clone without CLONE_THREAD get the
// action.
func TestFilterDecisions(t *testing.T) {
	list, err := Allowlist()
	if err != nil {
		t.Skip(err)
	}
	const x32 = 0x40000000
	for _, action := range []SeccompAction{SeccompErrno, SeccompKill} {
		prog, err := Program(action)
		if err != nil {
			t.Fatal(err)
		}
		deny := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
		if action == SeccompKill {
			deny = unix.SECCOMP_RET_KILL_PROCESS
		}
		for _, s := range list {
			want := uint32(unix.SECCOMP_RET_ALLOW)
			if s.Errno != 0 {
				want = unix.SECCOMP_RET_ERRNO | uint32(s.Errno)
			}
			if got := run(t, prog, auditArch, int32(s.Nr), unix.CLONE_THREAD); got != want {
				t.Errorf("%v: %s: %#x, want %#x", action, s.Name, got, want)
			}
			if got := run(t, prog, unix.AUDIT_ARCH_I386, int32(s.Nr), unix.CLONE_THREAD); got != unix.SECCOMP_RET_KILL_PROCESS {
				t.Errorf("%v: %s under the i386 ABI: %#x, want kill", action, s.Name, got)
			}
			if got := run(t, prog, auditArch, int32(s.Nr|x32), unix.CLONE_THREAD); got != deny {
				t.Errorf("%v: x32 %s: %#x, want %#x", action, s.Name, got, deny)
			}
		}
		for name, c := range map[string]struct {
			nr   uintptr
			arg0 uint64
		}{
			"socket":          {unix.SYS_SOCKET, 0},
			"execve":          {unix.SYS_EXECVE, 0},
			"clone a process": {unix.SYS_CLONE, uint64(unix.SIGCHLD)},
			"ptrace":          {unix.SYS_PTRACE, 0},
		} {
			if got := run(t, prog, auditArch, int32(c.nr), c.arg0); got != deny {
				t.Errorf("%v: %s: %#x, want %#x", action, name, got, deny)
			}
		}
	}
}
