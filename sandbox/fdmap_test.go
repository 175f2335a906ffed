package sandbox

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// TestFDMapIsAPermutation: after any sequence of swaps, each guest number
// names one wazero number and back, as a plain permutation of the numbers
// swapped the same way does, and the maps hold no entry that names
// itself (so that they empty again when every move is undone).
func TestFDMapIsAPermutation(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var m fdMap
		ref := []uint32{0, 1, 2, 3, 4, 5, 6, 7}
		var done [][2]uint32
		for k := 0; k < 1+r.IntN(12); k++ {
			a, b := uint32(r.IntN(len(ref))), uint32(r.IntN(len(ref)))
			m.swap(a, b)
			ref[a], ref[b] = ref[b], ref[a]
			done = append(done, [2]uint32{a, b})
		}
		for g, w := range ref {
			if got := m.wazero(uint32(g)); got != w {
				t.Fatalf("after %v: guest %d names wazero %d, want %d", done, g, got, w)
			}
			if got := m.guest(w); got != uint32(g) {
				t.Fatalf("after %v: wazero %d is guest %d, want %d", done, w, got, g)
			}
		}
		for g, w := range m.toWazero {
			if g == w || m.toGuest[w] != g {
				t.Fatalf("after %v: entry %d->%d", done, g, w)
			}
		}
		if len(m.toWazero) != len(m.toGuest) {
			t.Fatalf("after %v: %d entries one way, %d the other", done, len(m.toWazero), len(m.toGuest))
		}
		for _, s := range slices.Backward(done) {
			m.swap(s[0], s[1])
		}
		if len(m.toWazero)+len(m.toGuest) != 0 {
			t.Fatalf("after %v undone: %v %v left", done, m.toWazero, m.toGuest)
		}
	}
}

// TestFDParamsOfWazerosFunctions: the descriptors each of wazero's WASI
// functions takes and opens are the ones its names say, so that every
// one is translated: a function that takes one and is found to take none
// would see the guest's numbers.
func TestFDParamsOfWazerosFunctions(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	c, err := wasi_snapshot_preview1.NewBuilder(rt).Compile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		in     []int
		result int
	}{
		"fd_write":          {[]int{0}, -1},
		"fd_renumber":       {[]int{0}, -1}, // its "to" is its own to translate
		"path_open":         {[]int{0}, 8},
		"path_link":         {[]int{0, 4}, -1},
		"path_rename":       {[]int{0, 3}, -1},
		"path_symlink":      {[]int{2}, -1},
		"sock_accept":       {[]int{0}, 2},
		"poll_oneoff":       {nil, -1}, // its descriptors are in memory
		"clock_time_get":    {nil, -1},
		"fd_prestat_get":    {[]int{0}, -1},
		"path_filestat_get": {[]int{0}, -1},
	}
	defs := c.ExportedFunctions()
	for name, w := range want {
		in, result := fdParams(defs[name].ParamNames())
		if !slices.Equal(in, w.in) || result != w.result {
			t.Errorf("%s %v: descriptors at %v, opened at %d; want %v, %d", name, defs[name].ParamNames(), in, result, w.in, w.result)
		}
	}
	for name, def := range defs {
		names := def.ParamNames()
		in, _ := fdParams(names)
		if len(names) > 0 && names[0] == "fd" && !slices.Contains(in, 0) {
			t.Errorf("%s takes a descriptor first that is not translated", name)
		}
	}
}
