package sandbox

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ampoule-run/ampoule/shim"
)

// callGuest instantiates testdata/calls.wasm over the gate's WASI (gated)
// or wazero's own, stdout discarded, stdin endless zeros, with the host's
// clocks and a temporary directory holding the file f and the link l to
// it as its first preopen (3), and returns its exported function name.
func callGuest(b *testing.B, gated bool, name string) api.Function {
	b.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	b.Cleanup(func() { rt.Close(ctx) })
	if gated {
		wasi, err := gatedWASI(ctx, rt, shim.Gate(), nil, &linkLookup{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := rt.InstantiateModule(ctx, wasi, wazero.NewModuleConfig()); err != nil {
			b.Fatal(err)
		}
	} else {
		wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	}
	bin, err := os.ReadFile("testdata/calls.wasm")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("sixteen bytes..\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		b.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().
		WithStdout(io.Discard).WithStdin(zeros{}).WithSysWalltime().WithSysNanotime().WithStartFunctions().
		WithFSConfig(wazero.NewFSConfig().WithDirMount(dir, "/")))
	if err != nil {
		b.Fatal(err)
	}
	return mod.ExportedFunction(name)
}

// zeros is an endless stdin of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// gateCalls are calls.wasm's loops: one for each allowed WASI function
// the gate wraps (every one with a descriptor, and poll_oneoff) that a
// loop can repeat, and clock_time_get, which the gate leaves wazero's.
// The pairs (open, renumber, mkdir, link, rename, symlink) make two calls
// a turn, the second undoing the first.
var gateCalls = []string{"write", "clock", "read", "fdstat", "stat", "open", "poll",
	"advise", "allocate", "datasync", "sync", "setflags", "setrights", "filestat", "setsize", "settimes",
	"pread", "pwrite", "prestat", "dirname", "readdir", "renumber", "seek", "tell",
	"mkdir", "pathtimes", "link", "readlink", "rename", "symlink"}

// BenchmarkGateCall is the cost of one allowed host call through the
// gate (its amendments and its numbering of descriptors included) and
// through plain wazero, in the same process, over wazero's own directory
// mount on both sides (so confinement, which launch's runs add, is not
// in it): b.N turns from one guest call, so the figure is per host call,
// or per pair for the loops that make two. BENCHMARKS.md has its target
// (within 1.2x) and how it was counted.
func BenchmarkGateCall(b *testing.B) {
	for _, fn := range gateCalls {
		for _, side := range []struct {
			name  string
			gated bool
		}{{"wazero", false}, {"gate", true}} {
			b.Run(fn+"/"+side.name, func(b *testing.B) {
				f := callGuest(b, side.gated, fn)
				ctx := context.Background()
				b.ResetTimer()
				if _, err := f.Call(ctx, uint64(b.N)); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
