package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
)

// TestRunnerGetsNoHostEnvironment: the runner process starts with an empty
// environment, so nothing the host sets (GODEBUG, GOMAXPROCS, anything
// else) reaches the process the workload runs in; the guest's environment
// is the spec's alone.
func TestRunnerGetsNoHostEnvironment(t *testing.T) {
	t.Setenv("AMPOULE_TEST_HOST_ONLY", "host-value")
	s, _, _ := spec(t, "hello")
	var environ []byte
	var readErr error
	res, err := Supervise(context.Background(), testExe(t), s, Hooks{
		BeforeStart: func(pid int) error {
			environ, readErr = os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			return nil
		},
	})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	if readErr != nil {
		t.Fatalf("reading the runner's environment: %v", readErr)
	}
	if len(environ) != 0 {
		t.Errorf("the runner inherited %d bytes of environment (the host's AMPOULE_TEST_HOST_ONLY among them: %v), want none",
			len(environ), bytes.Contains(environ, []byte("AMPOULE_TEST_HOST_ONLY=host-value")))
	}
}
