// Package audit counts the system calls of one process with an eBPF program
// on the raw sys_enter tracepoint (cilium/ebpf), so that a developer can see
// what a run asks of the kernel and draft a seccomp allowlist from it.
//
// It needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BPF raw
// tracepoints; where either is missing Start says so and nothing else
// changes.
package audit

import (
	"errors"
	"fmt"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// maxSyscall bounds the counted numbers; x86-64 numbers are below 512.
const maxSyscall = 512

// Audit counts the system calls of one thread group.
type Audit struct {
	counts *ebpf.Map
	prog   *ebpf.Program
	link   link.Link
}

// Count is one system call and how often it was made.
type Count struct {
	Nr    uint32 `json:"nr"`
	Name  string `json:"name"`
	Count uint64 `json:"count"`
}

// ErrUnavailable wraps every reason an audit cannot start.
var ErrUnavailable = errors.New("eBPF syscall audit unavailable")

// Start attaches a counter for the process tgid (all its threads).
func Start(tgid uint32) (*Audit, error) {
	spec := &ebpf.MapSpec{
		Name:       "ampoule_counts",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: maxSyscall,
	}
	counts, err := ebpf.NewMap(spec)
	if errors.Is(err, unix.EPERM) && raiseMemlock() {
		// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; later
		// ones to the memory cgroup, and the limit stays as it was.
		counts, err = ebpf.NewMap(spec)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: creating the counter map: %v (run as root)", ErrUnavailable, err)
	}
	progSpec := &ebpf.ProgramSpec{
		Name:         "ampoule_audit",
		Type:         ebpf.RawTracepoint,
		License:      "Apache-2.0",
		Instructions: program(tgid, counts.FD()),
	}
	prog, err := ebpf.NewProgram(progSpec)
	if errors.Is(err, unix.EPERM) && raiseMemlock() {
		prog, err = ebpf.NewProgram(progSpec)
	}
	if err != nil {
		counts.Close()
		return nil, fmt.Errorf("%w: loading the program: %v", ErrUnavailable, err)
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: prog})
	if err != nil {
		prog.Close()
		counts.Close()
		return nil, fmt.Errorf("%w: attaching to sys_enter: %v", ErrUnavailable, err)
	}
	return &Audit{counts: counts, prog: prog, link: l}, nil
}

// raiseMemlock lifts RLIMIT_MEMLOCK, as cilium/ebpf's rlimit.RemoveMemlock
// does, only when a map could not be made without it. (That package probes
// the kernel with a BPF map in its init, which every process of the
// launcher paid for at its start, audit or not.)
func raiseMemlock() bool {
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	return unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf) == nil
}

// program is, for a raw sys_enter tracepoint (ctx->args[1] is the number):
//
//	if (bpf_get_current_pid_tgid() >> 32 != tgid) return 0;
//	u32 nr = ctx->args[1]; if (nr >= maxSyscall) return 0;
//	u64 *c = bpf_map_lookup_elem(&counts, &nr); if (c) __sync_fetch_and_add(c, 1);
//	return 0;
func program(tgid uint32, mapFD int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.JNE.Imm(asm.R0, int32(tgid), "out"),
		asm.LoadMem(asm.R1, asm.R6, 8, asm.DWord),
		asm.JGE.Imm(asm.R1, maxSyscall, "out"),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, mapFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
}

// Counts returns every system call made at least once, most frequent first.
func (a *Audit) Counts() ([]Count, error) {
	var out []Count
	for nr := uint32(0); nr < maxSyscall; nr++ {
		var n uint64
		if err := a.counts.Lookup(nr, &n); err != nil {
			return nil, fmt.Errorf("reading the count of %d: %w", nr, err)
		}
		if n > 0 {
			out = append(out, Count{Nr: nr, Name: Name(nr), Count: n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Nr < out[j].Nr
	})
	return out, nil
}

// Reset sets every count back to zero.
func (a *Audit) Reset() error {
	var zero uint64
	for nr := uint32(0); nr < maxSyscall; nr++ {
		if err := a.counts.Put(nr, zero); err != nil {
			return fmt.Errorf("resetting the count of %d: %w", nr, err)
		}
	}
	return nil
}

// Close detaches the program and frees the map.
func (a *Audit) Close() error {
	return errors.Join(a.link.Close(), a.prog.Close(), a.counts.Close())
}

// Name names a system call number of this machine, or "syscall_N".
func Name(nr uint32) string {
	if n, ok := syscallNames[nr]; ok {
		return n
	}
	return fmt.Sprintf("syscall_%d", nr)
}
