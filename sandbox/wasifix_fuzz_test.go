package sandbox

import (
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/ampoule-run/ampoule/shim"
)

// FuzzPollOneoff hands the gate's poll_oneoff (fixPollOneoff in front of
// wazero's) random subscription bytes, counts and offsets in real guest
// memory. It never panics nor traps (wazero's own, given a count whose
// arrays' size wraps in 32 bits, indexed past its buffer), always answers
// one of WASI's errnos, EFAULT for arrays outside memory, and when it answers success for subscriptions that are all FD_WRITE or
// clocks (the ones the amendment answers itself) the events are the
// truth: one per FD_WRITE, in order, each with its subscription's
// userdata, ready for stdin, stdout and stderr (the guest's only open
// descriptors; 0 and 2 in the guest that moved stdout onto stderr, whose
// subscriptions the gate translates) and EBADF for any other, and no
// other byte of memory changed.
func FuzzPollOneoff(f *testing.F) {
	ctx := context.Background()
	bin, err := os.ReadFile("testdata/poll.wasm")
	if err != nil {
		f.Fatal(err)
	}
	// Two guests: one as it starts, and one that renumbered stdout onto
	// stderr, whose subscriptions the gate translates (open: 0 and 2).
	var polls [2]api.Function
	var mems [2]api.Memory
	for i := range polls {
		rt := gatedRuntime(ctx, f)
		// wazero's default clock and sleep are fakes: a clock subscription
		// returns at once.
		guest, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithStartFunctions())
		if err != nil {
			f.Fatal(err)
		}
		if i == 1 {
			if res, err := guest.ExportedFunction("moved").Call(ctx); err != nil || res[0] != 0 {
				f.Fatalf("fd_renumber(1, 2): %v %v", res, err)
			}
		}
		polls[i], mems[i] = guest.ExportedFunction("poll"), guest.Memory()
	}
	open := func(moved bool, fd uint32) bool {
		if moved {
			return fd == 0 || fd == 2
		}
		return fd <= 2
	}

	sub := func(userdata uint64, tag byte, fd uint32) []byte {
		b := make([]byte, subscriptionSize)
		binary.LittleEndian.PutUint64(b, userdata)
		b[8] = tag
		binary.LittleEndian.PutUint32(b[16:], fd)
		return b
	}
	two := append(sub(7, eventTypeFdWrite, 1), sub(8, eventTypeFdWrite, 99)...)
	f.Add(two, uint32(0), uint32(1024), uint32(2), uint32(2048), false)
	f.Add(append(two, sub(9, 0, 1)...), uint32(0), uint32(0), uint32(3), uint32(60), false)                    // out over in
	f.Add(sub(1, 1, 0), uint32(0), uint32(512), uint32(1), uint32(600), false)                                 // FD_READ: wazero's
	f.Add(two, uint32(65530), uint32(0), uint32(2), uint32(4), false)                                          // in past memory
	f.Add(two, uint32(0), uint32(65500), uint32(2), uint32(4), false)                                          // out past memory
	f.Add(two, uint32(0), uint32(1024), uint32(0x7fffffff), uint32(8), false)                                  // nsub past memory
	f.Add(two, uint32(0), uint32(1024), uint32(2), uint32(65534), false)                                       // result past memory
	f.Add(append(two, sub(3, eventTypeFdWrite, 2)...), uint32(0), uint32(1024), uint32(3), uint32(2048), true) // stdout moved to 2
	f.Add(append(two, sub(3, eventTypeFdWrite, 2)...), uint32(0), uint32(8), uint32(3), uint32(900), true)     // moved, out over in

	f.Fuzz(func(t *testing.T, subs []byte, in, out, nsub, resultN uint32, moved bool) {
		poll, mem := polls[0], mems[0]
		if moved {
			poll, mem = polls[1], mems[1]
		}
		page := make([]byte, mem.Size())
		copy(page[in%uint32(len(page)):], subs)
		mem.Write(0, page)
		before := append([]byte(nil), page...)
		res, err := poll.Call(ctx, uint64(in), uint64(out), uint64(nsub), uint64(resultN))
		if err != nil {
			t.Fatalf("poll_oneoff trapped: %v", err)
		}
		errno := uint32(res[0])
		if errno > uint32(shim.ENOTCAPABLE) {
			t.Fatalf("poll_oneoff answered %d, not a WASI errno", errno)
		}
		size := uint64(len(before))
		outside := uint64(in)+uint64(nsub)*subscriptionSize > size || uint64(out)+uint64(nsub)*eventSize > size
		if nsub > 0 && outside && errno != uint32(shim.EFAULT) {
			t.Fatalf("subscriptions or events outside memory: %s, want EFAULT", shim.ErrnoName(errno))
		}
		if errno != 0 || nsub == 0 || outside {
			return
		}
		var writes []uint32
		for i := uint32(0); i < nsub; i++ {
			switch before[in+i*subscriptionSize+8] {
			case eventTypeFdWrite:
				writes = append(writes, i)
			case 0:
			default:
				return // wazero's own answer
			}
		}
		if len(writes) == 0 {
			return
		}
		n, _ := mem.ReadUint32Le(resultN)
		if int(n) != len(writes) {
			t.Fatalf("%d events for %d FD_WRITE subscriptions", n, len(writes))
		}
		after, _ := mem.Read(0, uint32(len(before)))
		for i := range before {
			at := uint64(i)
			inEvents := at >= uint64(out) && at < uint64(out)+uint64(n)*eventSize
			inCount := at >= uint64(resultN) && at < uint64(resultN)+4
			if !inEvents && !inCount && after[i] != before[i] {
				t.Fatalf("byte %d changed from %#x to %#x, outside the events and their count (the subscriptions translated and not put back?)", i, before[i], after[i])
			}
		}
		if end := uint64(out) + uint64(len(writes))*eventSize; end > uint64(len(before)) {
			t.Fatalf("success with events past memory (%d > %d)", end, len(before))
		} else if end > uint64(resultN) && uint64(resultN)+4 > uint64(out) {
			return // the count overwrote the events: nothing more to check
		}
		for k, i := range writes {
			s := before[in+i*subscriptionSize:]
			ev, _ := mem.Read(out+uint32(k)*eventSize, eventSize)
			if got, want := binary.LittleEndian.Uint64(ev), binary.LittleEndian.Uint64(s); got != want {
				t.Errorf("event %d: userdata %#x, want %#x", k, got, want)
			}
			if ev[10] != eventTypeFdWrite {
				t.Errorf("event %d: type %d, want FD_WRITE", k, ev[10])
			}
			want := uint16(0)
			if fd := binary.LittleEndian.Uint32(s[16:]); !open(moved, fd) {
				want = uint16(shim.EBADF)
			}
			if got := binary.LittleEndian.Uint16(ev[8:]); got != want {
				t.Errorf("event %d: error %d, want %d", k, got, want)
			}
		}
	})
}
