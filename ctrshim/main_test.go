package ctrshim

import (
	"os"
	"testing"

	"github.com/ampoule-run/ampoule"
)

// TestMain honours the runner re-exec contract: the test binary is the
// runner of the runs the in-process Service starts.
func TestMain(m *testing.M) {
	ampoule.RunnerMain()
	os.Exit(m.Run())
}
