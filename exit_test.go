package ampoule

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestExit: Exit runs what AtExit registered, and not what was dropped,
// then ends the process with its code (seen from outside: the test binary
// run again as the exiting process).
func TestExit(t *testing.T) {
	if out := os.Getenv("AMPOULE_TEST_EXIT"); out != "" {
		AtExit(func() { os.WriteFile(out, []byte("ran"), 0o644) })
		drop := AtExit(func() { os.WriteFile(out, []byte("dropped one ran"), 0o644) })
		drop()
		Exit(7)
	}
	out := filepath.Join(t.TempDir(), "out")
	cmd := exec.Command(os.Args[0], "-test.run=^TestExit$")
	cmd.Env = append(os.Environ(), "AMPOULE_TEST_EXIT="+out)
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 {
		t.Fatalf("exit: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "ran" {
		t.Errorf("the cleanups left %q", b)
	}
}
