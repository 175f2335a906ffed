//go:build race

package ampoule

import (
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// testRunner is the runner a test's Server starts: under the race
// detector the launch binary, built without it, as cmd/launch's tests do.
// The detector finds races in the server, which is this process; an
// instrumented runner compiles past its compile bound on a loaded machine.
func testRunner(t testing.TB) string { return testwasm.Launch(t) }
