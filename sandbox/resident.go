package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
)

// A runner's resident memory is bounded from outside, by its supervisor,
// because not all that a guest makes wazero allocate goes through the
// linear-memory allocator: table.grow on a table without a maximum appends
// to a Go slice up to 2^32 entries, wazero's call stack grows to 400 MB
// before it traps, and wazero's own per-module structures are sized by the
// module. A call stack deeper than the bound allows ends with E4001, not
// with wazero's stack-overflow trap. No guest can stall the supervisor, and the kernel
// frees the runner's memory at once when it is killed.
const (
	// residentOverhead is what a runner needs beside its guest: the Go
	// runtime, the launcher's own pages, wazero and its compiled code (a
	// runner of the hello example peaks at about 60 MB, 16 MiB of it the
	// guest's memory).
	residentOverhead = 128 << 20
	// residentPerModuleByte is what compiling costs per byte of module,
	// twice what was measured here (61 MB peak for a 2.6 MB Go module,
	// 254 MB for a 15.8 MB one).
	residentPerModuleByte = 32
	// residentInterpretedPerModuleByte is what a run that interprets its
	// module (Spec.InterpretFirst) keeps beside the compile that goes on
	// meanwhile, per byte of module: wazero's interpreter holds the whole
	// module as its own instructions for as long as the guest runs, which
	// may be all of the compile. Twice what was measured here (a runner's
	// peak grows by 21 bytes per byte of hello's 2.7 MB module, by 23 for a
	// 17 MB Go module; see BENCHMARKS.md).
	residentInterpretedPerModuleByte = 48
	// residentPoll is how often the supervisor looks. A guest faulting in
	// fresh pages gains a few tens of MB between two looks.
	residentPoll = 5 * time.Millisecond
	// residentIdlePoll is how often it looks at a runner that has
	// compiled and waits to be told to start (a warm runner, idle): it
	// runs nothing of the guest and allocates nothing until then, and
	// looking every residentPoll cost an idle server a tenth of a core
	// for two warm runners.
	residentIdlePoll = 500 * time.Millisecond
)

// residentBound is the most resident memory a runner of spec may use, in
// bytes: its memory limit twice (linear memory, and as much again for what
// the guest makes outside it: tables, segments, globals), the runner's own
// overhead and what compiling the module costs, and, where the module may
// run interpreted while it compiles (InterpretFirst with a cache: the
// runner decides by the cache's mark, which the host may remove), what
// the interpreter keeps of it too. Zero means no bound (no memory limit).
func residentBound(spec Spec) uint64 {
	if spec.MemoryPages == 0 {
		return 0
	}
	perByte := uint64(residentPerModuleByte)
	if spec.InterpretFirst && spec.CacheDir != "" {
		perByte += residentInterpretedPerModuleByte
	}
	return 2*uint64(spec.MemoryPages)*pageSize + residentOverhead + perByte*uint64(len(spec.Module))
}

// Compilation happens before the wall-time clock starts, so it has a bound
// of its own: the wall time, but never less than compileFloor and
// compilePerMiB for each MiB of module, so that a short wall time still
// lets a real module compile (about 0.7 s per MiB here, with two cores
// shared).
const (
	compileFloor  = 5 * time.Second
	compilePerMiB = 2 * time.Second
)

// compileBound is how long a supervised runner may take to compile spec's
// module; zero means no bound.
func compileBound(spec Spec) time.Duration {
	if spec.CompileTime > 0 {
		return spec.CompileTime
	}
	if spec.WallTime <= 0 {
		return 0
	}
	return max(spec.WallTime, compileFloor+time.Duration(len(spec.Module))*compilePerMiB/(1<<20))
}

// watchResident looks at pid's resident set every residentPoll until stop
// is closed, and sends its size, once, when it passes bound; between ready
// being closed and started being closed (the runner waits, compiled, to be
// told to start) it looks every residentIdlePoll. It fails when the
// process's statistics cannot be read at all, so that a bound that cannot
// be enforced is known; once the process has gone it stops quietly.
func watchResident(pid int, bound uint64, stop, ready, started <-chan struct{}) (<-chan uint64, error) {
	over := make(chan uint64, 1)
	if bound == 0 {
		return over, nil
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return nil, fmt.Errorf("watching the runner's memory: %w", err)
	}
	page := uint64(os.Getpagesize())
	read := func(buf []byte) (uint64, bool) {
		n, _ := f.ReadAt(buf, 0)
		fields := bytes.Fields(buf[:n])
		if len(fields) < 2 {
			return 0, false
		}
		pages, err := strconv.ParseUint(string(fields[1]), 10, 64)
		return pages * page, err == nil
	}
	buf := make([]byte, 256)
	if _, ok := read(buf); !ok {
		f.Close()
		return nil, fmt.Errorf("watching the runner's memory: /proc/%d/statm is unreadable", pid)
	}
	go func() {
		defer f.Close()
		t := time.NewTimer(residentPoll)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ready:
				// Compiled: idle until started, and looked at once more
				// when it is.
				ready = nil
				t.Reset(residentIdlePoll)
				continue
			case <-started:
				started = nil
				t.Reset(0)
				continue
			case <-t.C:
			}
			if ready == nil && started != nil {
				t.Reset(residentIdlePoll)
			} else {
				t.Reset(residentPoll)
			}
			rss, ok := read(buf)
			if !ok {
				return // the runner has exited
			}
			if rss > bound {
				over <- rss
				return
			}
		}
	}()
	return over, nil
}

// residentError is the outcome of a runner killed at its resident bound.
func residentError(rss, bound uint64, spec Spec) error {
	return errcode.Errorf(errcode.MemoryLimit, "the runner's resident memory reached %d bytes, past its bound of %d (twice the memory limit of %d, and the runtime's own): a table grown, a deep call stack, or what else wazero allocates for the guest",
		rss, bound, uint64(spec.MemoryPages)*pageSize)
}
