//go:build race

package main

import (
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// runnerExe is the runner the in-process runs start: under the race
// detector the launch binary, built without it. The race detector finds
// races in the supervisor, which is this process; the runner's own code is
// the runtime package's, which its tests run under the detector. An
// instrumented runner made each run many times slower and this package's
// tests longer than CI allows.
func runnerExe(t *testing.T) string { return testwasm.Launch(t) }
