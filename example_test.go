package ampoule_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/tee"
)

// TestMain honours the runner re-exec contract: the test binary is the
// runner of the runs its tests and examples start.
func TestMain(m *testing.M) {
	ampoule.RunnerMain()
	if os.Getenv(crashAfterProtectEnv) != "" {
		crashAfterProtect()
	}
	code := m.Run()
	testwasm.RemoveCacheDir()
	os.Exit(code)
}

// Run a bundle (here a committed tiny module that prints one line) under
// the debug profile on the simulator: its output reaches the caller, and
// the result says which backend it ran on.
func Example() {
	dir, err := os.MkdirTemp("", "ampoule-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	res, err := ampoule.Run(context.Background(), "testdata/tiny", ampoule.Config{
		Profile:  "debug",
		Backend:  tee.KindSim,
		SimKey:   filepath.Join(dir, "sim.key"), // made on first use
		NoCache:  true,
		Stdout:   os.Stdout,
		Warnings: io.Discard, // "backend sim is a software simulator: ..."
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("exit %d, backend %s, insecure %v\n", res.ExitCode, res.Backend, res.Insecure)
	// Output:
	// hello from a tiny module
	// exit 0, backend sim, insecure true
}
