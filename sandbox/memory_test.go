package sandbox

import (
	"testing"
	"unsafe"
)

// TestMemoryGrowsInPlace grows a linear memory page by page to its limit:
// it never moves (nothing is copied), what the guest wrote stays, growing
// past the limit fails and reports the breach, and release unmaps the
// reservation.
func TestMemoryGrowsInPlace(t *testing.T) {
	hits := 0
	const limit = 64 * pageSize
	a := &allocator{limit: limit, hit: func() { hits++ }}
	m := a.Allocate(0, 65536*pageSize)
	buf := m.Reallocate(pageSize)
	if len(buf) != pageSize {
		t.Fatalf("initial memory: %d bytes, want %d", len(buf), pageSize)
	}
	base := unsafe.SliceData(buf)
	for size := uint64(2 * pageSize); size <= limit; size += pageSize {
		prev := buf
		prev[len(prev)-1] = byte(size / pageSize)
		buf = m.Reallocate(size)
		if uint64(len(buf)) != size {
			t.Fatalf("grown to %d: %d bytes", size, len(buf))
		}
		if unsafe.SliceData(buf) != base {
			t.Fatalf("grown to %d bytes: the memory moved", size)
		}
		if got := buf[size-pageSize-1]; got != byte(size/pageSize) {
			t.Fatalf("grown to %d bytes: the last byte written before reads %d", size, got)
		}
	}
	if len(a.reserved) != 1 || uint64(len(a.reserved[0])) != limit {
		t.Fatalf("reservations %d, want one of the limit", len(a.reserved))
	}
	if hits != 0 {
		t.Fatalf("the limit reported %d times before it was passed", hits)
	}
	if b := m.Reallocate(limit + pageSize); b != nil {
		t.Fatalf("grown past the limit to %d bytes", len(b))
	}
	if hits != 1 {
		t.Fatalf("passing the limit reported %d times, want 1", hits)
	}
	m.Free()
	a.release()
	if a.reserved != nil {
		t.Fatal("release left reservations")
	}
}

// TestMemoryReservesItsMaximum: a memory whose maximum is below the limit
// reserves only its maximum, and one whose minimum is above the limit
// is the breach, with the minimum there for wazero to look at.
func TestMemoryReservesItsMaximum(t *testing.T) {
	a := &allocator{limit: 64 * pageSize, hit: func() {}}
	m := a.Allocate(0, 4*pageSize)
	if b := m.Reallocate(pageSize); len(b) != pageSize {
		t.Fatalf("initial memory %d bytes", len(b))
	}
	if len(a.reserved) != 1 || len(a.reserved[0]) != 4*pageSize {
		t.Fatalf("reserved %d regions, want one of the memory's maximum", len(a.reserved))
	}
	a.release()

	hits := 0
	over := &allocator{limit: pageSize, hit: func() { hits++ }}
	if b := over.Allocate(0, 65536*pageSize).Reallocate(2 * pageSize); len(b) != 2*pageSize || hits != 1 {
		t.Fatalf("a minimum above the limit: %d bytes, %d breaches; want its minimum and one", len(b), hits)
	}
	if len(over.reserved) != 0 {
		t.Fatal("a memory above its limit reserved address space")
	}
}
