package ampoule_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/tee"
)

// TestInterpretFirstThroughTheRunner: with InterpretFirst, a staging run
// whose module no run has compiled is interpreted while its code is
// compiled into the authenticated cache; the next run in the same VM, and
// one in a new VM from the disk tier, start from the compiled code. The
// workload's output is the same each time and the host is told nothing.
func TestInterpretFirstThroughTheRunner(t *testing.T) {
	vm := newStagingVMs(t, "debug,staging")
	first := ampoule.Config{InterpretFirst: true}
	vm.newVM()
	vm.expect("first run", "cache=interpreted", first)
	vm.expect("same VM", "cache=hit", first)
	vm.newVM()
	vm.expect("new VM", "cache=hit", first)
	bundle, simKey := vm.bundle, vm.simKey
	const want = "hello from a tiny module\n"

	// Under debug, through the runner, with the disk cache.
	cache := t.TempDir()
	for i, in := range []string{"interpreted", "hit"} {
		var stdout, stderr testwasm.SyncBuffer
		if _, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
			Profile: "debug", Backend: tee.KindSim, SimKey: simKey, CacheDir: cache, InterpretFirst: true,
			Stdout: &stdout, Stderr: &stderr, LogLevel: hclog.Info, // its records, to stderr
		}); err != nil {
			t.Fatal(err)
		}
		if stdout.String() != want {
			t.Errorf("debug run %d wrote %q", i, stdout.String())
		}
		if !strings.Contains(stderr.String(), "cache="+in) {
			t.Errorf("debug run %d: stderr does not say cache=%s:\n%s", i, in, stderr.String())
		}
	}
}
