//go:build race

package ampoule_test

import (
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// migrateRunner is the runner the sealed-store hand-on tests' runs start:
// under the race detector the launch binary, built without it, as the
// server's tests do. The detector races this process; an instrumented
// runner compiles the notebook past its minute's compile bound on a loaded
// machine (seen at a load average of 25).
func migrateRunner(t testing.TB) string { return testwasm.Launch(t) }
