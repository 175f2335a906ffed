package sandbox

import (
	"errors"
	"io"
	"math"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// allocator backs linear memory and enforces the memory limit itself, so that
// a breach is known for what it is (wazero's own page limit only makes
// memory.grow fail, which a guest reports as it likes). Growing past the limit
// fails and ends the run through hit.
//
// A memory lives in address space reserved once, up to the limit (or the
// memory's maximum, if lower), outside the Go heap: growing it only
// lengthens the slice. No growth copies the guest's memory into a new
// buffer, leaves the old one to the collector or counts towards the heap's
// goal; the kernel gives the pages as the guest first touches them. Where
// the reservation fails, a memory is a Go slice grown by doubling. The
// reservations are unmapped by release, once no guest can touch them.
type allocator struct {
	limit uint64
	hit   func()

	mu       sync.Mutex
	reserved [][]byte
}

// Allocate implements experimental.MemoryAllocator.
func (a *allocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	return &linearMemory{a: a, capacity: capacity, max: max}
}

// reserve maps n bytes of address space, untouched, or returns nil.
func (a *allocator) reserve(n uint64) []byte {
	n = (n + reservePage - 1) &^ (reservePage - 1)
	if n == 0 || n > math.MaxInt {
		return nil
	}
	b, err := unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	a.mu.Lock()
	a.reserved = append(a.reserved, b)
	a.mu.Unlock()
	return b
}

// release unmaps the reservations. It must be called only once no guest
// runs on them, nor will: a guest's memory read after release would fault.
func (a *allocator) release() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, b := range a.reserved {
		unix.Munmap(b)
	}
	a.reserved = nil
}

// reservePage is what a reservation is rounded up to.
const reservePage = 64 << 10

type linearMemory struct {
	a        *allocator
	capacity uint64
	max      uint64
	region   []byte // the reservation, if there is one
	tried    bool   // reserving was tried
	buf      []byte
}

// Reallocate grows the memory to size bytes, within its reservation, or
// else doubling capacity as append does but never past the limit. It
// returns nil, failing the guest's memory.grow, when size is above the
// limit.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.a.limit {
		m.a.hit()
		if m.buf == nil {
			// The module's initial memory is above the limit. wazero needs the
			// minimum to exist; the run is already cancelled and will not
			// execute an instruction, and Go maps (not touches) this buffer.
			m.buf = make([]byte, size)
		}
		if m.buf != nil && uint64(len(m.buf)) >= size {
			return m.buf[:size]
		}
		return nil
	}
	if !m.tried {
		m.tried = true
		if m.buf == nil {
			m.region = m.a.reserve(min(m.a.limit, max(m.max, size)))
		}
	}
	if m.region != nil && size <= uint64(len(m.region)) {
		m.buf = m.region[:size:size]
		return m.buf
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	newCap := max(size, m.capacity, 2*uint64(cap(m.buf)))
	newCap = min(newCap, m.a.limit)
	buf := make([]byte, size, newCap)
	copy(buf, m.buf)
	m.buf = buf
	return m.buf
}

// Free implements experimental.LinearMemory. The reservation stays mapped
// until the allocator's release: wazero frees a memory when it closes its
// module, which a cancelled run's context may do while the guest still
// runs, up to its next check.
func (m *linearMemory) Free() { m.buf = nil }

// errOutputLimit is what a write past the output limit returns to the guest.
var errOutputLimit = errors.New("output limit reached")

// errRunEnded is what a write after the run ended returns to a preemptible guest.
var errRunEnded = errors.New("the run has ended")

// outputLimit counts what stdout and stderr write together. The write that
// crosses the limit is cut at the limit and ends the run through hit. Nothing
// written after the run ended reaches the host.
type outputLimit struct {
	end       *ending
	mu        sync.Mutex
	remaining int64
	hit       func()
}

// wrap returns w bounded by o.
func (o *outputLimit) wrap(w io.Writer) io.Writer {
	return &limitedWriter{o: o, w: w}
}

type limitedWriter struct {
	o *outputLimit
	w io.Writer
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.o.end.over() {
		return 0, errRunEnded
	}
	l.o.mu.Lock()
	allowed := int64(len(p))
	over := allowed > l.o.remaining
	if over {
		allowed = l.o.remaining
	}
	l.o.remaining -= allowed
	l.o.mu.Unlock()
	n := 0
	if allowed > 0 {
		var err error
		n, err = l.w.Write(p[:allowed])
		if err != nil {
			return n, err
		}
	}
	if over {
		l.o.hit()
		return n, errOutputLimit
	}
	return n, nil
}
