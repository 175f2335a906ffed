// Package testwarm compiles example guests into a test binary's shared
// compilation cache (testwasm.CacheDir) before the tests that run them.
//
// A first compile of an example on a loaded machine takes 10-30 s, past
// the 5-10 s an example's own wall time allows; the tests that use the
// shared cache are not about compile time, so their examples are compiled
// here, once, by warm runners whose compile bound is minutes.
package testwarm

import (
	"os"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/sandbox"
)

// Compile compiles each named example into dir, all at once, with the
// runner executable exe (empty: this test binary, which must then call
// the runner entry from its TestMain). A warm-up that fails is reported
// by the test that asked; later runs then compile for themselves.
func Compile(t testing.TB, exe, dir string, names ...string) {
	t.Helper()
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			t.Fatal(err)
		}
	}
	var ws []*sandbox.Warm
	for _, name := range names {
		w, err := sandbox.Prepare(exe, sandbox.Spec{Module: testwasm.Module(t, name), Name: name, MemoryPages: 1024,
			WallTime: time.Minute, CompileTime: 3 * time.Minute, CacheDir: dir})
		if err != nil {
			t.Fatalf("warming the shared cache with %s: %v", name, err)
		}
		ws = append(ws, w)
	}
	for i, w := range ws {
		select {
		case <-w.Ready():
		case <-w.Done():
			t.Errorf("warming the shared cache: the runner compiling %s ended", names[i])
		}
		w.Kill()
	}
}
