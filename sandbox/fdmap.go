package sandbox

import (
	"context"
	"encoding/binary"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// fdMap is the guest's numbering of wazero's descriptors where it differs
// from wazero's own. wazero keeps its preopens (stdin, stdout, stderr and
// each mount's directory) at the numbers it gave them and refuses to
// renumber one (ENOTSUP); fd_renumber of a preopen is therefore a swap of
// two numbers here: the destination's number names the preopen, the
// source's the destination's wazero number, just closed. A composition of
// swaps is a permutation, so every guest number names exactly one wazero
// number and wazero's own answers (EBADF for a closed number, the lowest
// free number for path_open) stay true once translated.
//
// Until a preopen moves, both maps are empty and a call pays one length
// check; the gate's per-call benchmarks count it.
type fdMap struct {
	toWazero, toGuest map[uint32]uint32
}

// wazero is the wazero number of guest descriptor g.
func (m *fdMap) wazero(g uint32) uint32 {
	if w, ok := m.toWazero[g]; ok {
		return w
	}
	return g
}

// guest is the guest's number of wazero descriptor w.
func (m *fdMap) guest(w uint32) uint32 {
	if g, ok := m.toGuest[w]; ok {
		return g
	}
	return w
}

// swap exchanges what guest numbers a and b name.
func (m *fdMap) swap(a, b uint32) {
	wa, wb := m.wazero(a), m.wazero(b)
	if m.toWazero == nil {
		m.toWazero, m.toGuest = make(map[uint32]uint32), make(map[uint32]uint32)
	}
	for _, e := range [2][2]uint32{{a, wb}, {b, wa}} {
		g, w := e[0], e[1]
		if g == w {
			delete(m.toWazero, g)
			delete(m.toGuest, w)
			continue
		}
		m.toWazero[g], m.toGuest[w] = w, g
	}
}

// fdParams lists which of a WASI function's parameters are descriptors
// it reads (by wazero's names: fd, old_fd, new_fd), and whether it writes
// one it opened to memory (result.opened_fd, result.fd).
func fdParams(names []string) (in []int, result int) {
	result = -1
	for i, n := range names {
		switch {
		case n == "fd" || strings.HasSuffix(n, "_fd") && !strings.HasPrefix(n, "result."):
			in = append(in, i)
		case n == "result.opened_fd" || n == "result.fd":
			result = i
		}
	}
	return in, result
}

// remapFDs is fn with its descriptor parameters (at in) translated from
// the guest's numbers to wazero's, and the descriptor it writes to memory
// (its parameter result, if not negative) from wazero's to the guest's.
// Functions that translate their own (fd_renumber, poll_oneoff, the
// guards) are not wrapped.
func remapFDs(st *fixState, in []int, result int, fn api.GoModuleFunction) api.GoModuleFunction {
	if len(in) == 1 && in[0] == 0 && result < 0 {
		return &remapFirst{st: st, fn: fn}
	}
	return &remapped{st: st, in: in, result: result, fn: fn}
}

// remapFirst is remapFDs for a function whose one descriptor is its first
// parameter and that opens none. Like guarded, it is a type, not a
// closure, so that wazero calls it directly.
type remapFirst struct {
	st *fixState
	fn api.GoModuleFunction
}

// Call implements api.GoModuleFunction.
func (r *remapFirst) Call(ctx context.Context, mod api.Module, stack []uint64) {
	if len(r.st.fds.toWazero) != 0 {
		r.st.fds.translateFirst(stack)
	}
	r.fn.Call(ctx, mod, stack)
}

// translateFirst translates stack[0] to wazero's number, out of line so
// that remapFirst's usual call saves none of its arguments.
//
//go:noinline
func (m *fdMap) translateFirst(stack []uint64) {
	stack[0] = uint64(m.wazero(uint32(stack[0])))
}

// remapped is remapFDs for any other function.
type remapped struct {
	st     *fixState
	in     []int
	result int
	fn     api.GoModuleFunction
}

// Call implements api.GoModuleFunction.
func (r *remapped) Call(ctx context.Context, mod api.Module, stack []uint64) {
	st, fn := r.st, r.fn
	if len(st.fds.toWazero) == 0 {
		fn.Call(ctx, mod, stack)
		return
	}
	for _, i := range r.in {
		stack[i] = uint64(st.fds.wazero(uint32(stack[i])))
	}
	var at uint32
	if r.result >= 0 {
		at = uint32(stack[r.result])
	}
	fn.Call(ctx, mod, stack)
	if r.result < 0 || stack[0] != 0 {
		return
	}
	mem := mod.Memory()
	if w, ok := mem.ReadUint32Le(at); ok {
		mem.WriteUint32Le(at, st.fds.guest(w))
	}
}

// pollFD is the offset of the descriptor in an FD_READ or FD_WRITE
// subscription, and eventTypeFdRead the first of those tags.
const (
	pollFD          = 16
	eventTypeFdRead = 1
)

// remapPoll is poll_oneoff with the descriptors of its FD_READ and
// FD_WRITE subscriptions translated to wazero's numbers in guest memory
// for the call, and put back after it, except where the call wrote its
// events or their count over them (the arrays may overlap).
func remapPoll(st *fixState, fn api.GoModuleFunc) api.GoModuleFunc {
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if len(st.fds.toWazero) == 0 {
			fn(ctx, mod, stack)
			return
		}
		in, out, nsub, resultN := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
		mem := mod.Memory()
		if mem == nil || uint64(in)+uint64(nsub)*subscriptionSize > uint64(mem.Size()) {
			fn(ctx, mod, stack) // EFAULT, from the amendment
			return
		}
		subs, _ := mem.Read(in, nsub*subscriptionSize)
		type put struct{ at, guest uint32 }
		var back []put
		for i := uint32(0); i < nsub; i++ {
			sub := subs[i*subscriptionSize:]
			if tag := sub[8]; tag != eventTypeFdRead && tag != eventTypeFdWrite {
				continue
			}
			g := binary.LittleEndian.Uint32(sub[pollFD:])
			if w := st.fds.wazero(g); w != g {
				binary.LittleEndian.PutUint32(sub[pollFD:], w)
				back = append(back, put{in + i*subscriptionSize + pollFD, g})
			}
		}
		fn(ctx, mod, stack)
		// Put back each byte the call did not write: those of its events
		// and of their count, after a success.
		var events, count uint64 // where they end (their start: out, resultN)
		if stack[0] == 0 {
			if n, ok := mem.ReadUint32Le(resultN); ok {
				events, count = uint64(out)+uint64(n)*eventSize, uint64(resultN)+4
			}
		}
		for _, p := range back {
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], p.guest)
			for j, v := range b {
				at := uint64(p.at) + uint64(j)
				if (at < uint64(out) || at >= events) && (at < uint64(resultN) || at >= count) {
					mem.WriteByte(uint32(at), v)
				}
			}
		}
	}
}
