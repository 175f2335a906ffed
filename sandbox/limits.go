package sandbox

import (
	"errors"
	"io"
	"sync"

	"github.com/tetratelabs/wazero/experimental"
)

// allocator backs linear memory and enforces the memory limit itself, so that
// a breach is known for what it is (wazero's own page limit only makes
// memory.grow fail, which a guest reports as it likes). Growing past the limit
// fails and ends the run through hit.
type allocator struct {
	limit uint64
	hit   func()
}

// Allocate implements experimental.MemoryAllocator.
func (a *allocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	return &linearMemory{a: a, capacity: capacity}
}

type linearMemory struct {
	a        *allocator
	capacity uint64
	buf      []byte
}

// Reallocate grows the memory to size bytes, doubling capacity as append does
// but never past the limit. It returns nil, failing the guest's memory.grow,
// when size is above the limit.
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

// Free implements experimental.LinearMemory.
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
