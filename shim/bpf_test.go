package shim

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// seccompData is the kernel's struct seccomp_data as a filter sees it.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], uint32(d.nr))
	binary.LittleEndian.PutUint32(b[4:], d.arch)
	binary.LittleEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// runBPF interprets a classic BPF seccomp program over d, as the kernel
// would, for the instructions a filter may use here: absolute 32-bit loads,
// a constant AND, constant jumps and returns. Anything else, a jump out of the program or
// running off its end is an error: the kernel would refuse such a program.
func runBPF(prog []unix.SockFilter, d seccompData) (uint32, error) {
	data := d.bytes()
	var a uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || int(in.K)+4 > len(data) {
				return 0, fmt.Errorf("%d: load at %d", pc, in.K)
			}
			a = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			cond := a == in.K
			if in.Code&0xf0 == unix.BPF_JSET {
				cond = a&in.K != 0
			}
			off := int(in.Jf)
			if cond {
				off = int(in.Jt)
			}
			pc += off
			if pc+1 >= len(prog) {
				return 0, fmt.Errorf("%d: jump past the end", pc-off)
			}
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
			if pc+1 >= len(prog) {
				return 0, fmt.Errorf("jump past the end")
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K, nil
		default:
			return 0, fmt.Errorf("%d: opcode %#x not expected in this filter", pc, in.Code)
		}
	}
	return 0, fmt.Errorf("the program runs off its end")
}

// TestProgramDecides runs the assembled filter, instruction by instruction,
// over system calls of every kind: the architecture check comes first and
// kills whatever the call, every allowlisted call is allowed, clone only
// for threads, clone3 is answered ENOSYS, and every other number (x32's
// aliases of allowed calls included) gets the action. Each answer is also
// the one the rules themselves give (Rules.Decide).
func TestProgramDecides(t *testing.T) {
	list, err := Allowlist()
	if err != nil {
		t.Skip(err)
	}
	const x32Bit = 0x40000000
	for _, action := range []SeccompAction{SeccompErrno, SeccompKill} {
		prog, err := Program(action)
		if err != nil {
			t.Fatal(err)
		}
		deny := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
		if action == SeccompKill {
			deny = unix.SECCOMP_RET_KILL_PROCESS
		}
		decide := func(d seccompData) uint32 {
			t.Helper()
			r, err := runBPF(prog, d)
			if err != nil {
				t.Fatalf("%v: %v", action, err)
			}
			return r
		}
		// Another architecture is killed, whatever the number: on x86-64
		// an int 0x80 call arrives as i386 with i386's numbers, under
		// which an allowed number names another call.
		for _, arch := range []uint32{unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_AARCH64, 0} {
			for _, nr := range []int32{unix.SYS_READ, unix.SYS_WRITE, unix.SYS_EXIT_GROUP, unix.SYS_SOCKET, unix.SYS_CLONE} {
				if r := decide(seccompData{nr: nr, arch: arch, args: [6]uint64{unix.CLONE_THREAD}}); r != unix.SECCOMP_RET_KILL_PROCESS {
					t.Errorf("%v: arch %#x nr %d: %#x, want kill", action, arch, nr, r)
				}
			}
		}
		for nr := int32(0); nr < 1024; nr++ {
			want := deny
			if s, ok := list[uintptr(nr)]; ok {
				switch {
				case s.Errno != 0:
					want = unix.SECCOMP_RET_ERRNO | uint32(s.Errno)
				case nr == unix.SYS_CLONE:
					want = unix.SECCOMP_RET_ALLOW
					for _, flags := range []uint64{uint64(unix.SIGCHLD), 0, unix.CLONE_VM | unix.CLONE_SIGHAND, 1 << 48 /* above the 32 bits checked */} {
						if r := decide(seccompData{nr: nr, arch: auditArch, args: [6]uint64{flags}}); r != deny {
							t.Errorf("%v: %s with flags %#x, no CLONE_THREAD: %#x, want %#x", action, s.Name, flags, r, deny)
						}
					}
					for _, flags := range []uint64{unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_SIGHAND, unix.CLONE_THREAD, unix.CLONE_THREAD | 1<<40} {
						if r := decide(seccompData{nr: nr, arch: auditArch, args: [6]uint64{flags}}); r != want {
							t.Errorf("%v: %s with flags %#x: %#x, want allow", action, s.Name, flags, r)
						}
					}
					continue
				case s.Rule == (MatchAll{}):
					want = unix.SECCOMP_RET_ALLOW
				default:
					t.Errorf("%s: rule %v, which this test does not know: give it its cases", s.Name, s.Rule)
				}
			}
			for _, args := range [][6]uint64{{unix.CLONE_THREAD}, {}, {^uint64(0), ^uint64(0), 1, 2, 3, 4}} {
				r := decide(seccompData{nr: nr, arch: auditArch, args: args})
				if r != want {
					t.Errorf("%v: nr %d args %x: %#x, want %#x", action, nr, args, r, want)
				}
				if d := list.Decide(uintptr(nr), args, deny); d != r {
					t.Errorf("%v: nr %d args %x: the rules decide %#x, the program %#x", action, nr, args, d, r)
				}
			}
			if r := decide(seccompData{nr: nr | x32Bit, arch: auditArch}); r != deny {
				t.Errorf("%v: x32 nr %d: %#x, want %#x", action, nr, r, deny)
			}
		}
		for _, banned := range []int32{unix.SYS_SOCKET, unix.SYS_EXECVE, unix.SYS_PTRACE, unix.SYS_FORK, unix.SYS_PROCESS_VM_READV} {
			if r := decide(seccompData{nr: banned, arch: auditArch}); r != deny {
				t.Errorf("%v: nr %d: %#x, want %#x", action, banned, r, deny)
			}
		}
	}
}
