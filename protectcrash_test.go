package ampoule_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule"
)

// crashAfterProtectEnv, set, makes the test binary a protected launcher
// that writes one line to the host and then panics on a goroutine of its
// own, which no recover catches (TestProtectSilencesTheRuntime).
const crashAfterProtectEnv = "AMPOULE_TEST_CRASH_AFTER_PROTECT"

func crashAfterProtect() {
	sigs := make(chan os.Signal, 1)
	if err := ampoule.Protect(sigs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	fmt.Fprintln(os.Stderr, "launch: protected")
	go func() { panic("the sealing key is 0f1e2d3c") }()
	select {}
}

// TestProtectSilencesTheRuntime: once a process is protected, what the Go
// runtime prints of a crash (the panic's value and, at its default level,
// the goroutine's stack with its arguments) reaches the host under no
// GOTRACEBACK the host sets: without one the launcher does not start again
// and the runtime's level stays the default, with all it starts again with
// none, and in every case the runtime's descriptor 2 is /dev/null while
// the launcher's own lines reach the host's stderr.
func TestProtectSilencesTheRuntime(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range []string{"", "GOTRACEBACK=all", "GOTRACEBACK=none", "GOTRACEBACK=crash"} {
		t.Run(env, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = []string{crashAfterProtectEnv + "=1"}
			if env != "" {
				cmd.Env = append(cmd.Env, env)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 {
				t.Fatalf("the crash ended %v, not with the runtime's status 2; stderr:\n%s", err, stderr.String())
			}
			if got := stderr.String(); got != "launch: protected\n" {
				t.Errorf("the host's stderr holds more than the launcher's line:\n%s", got)
			}
			if strings.Contains(stderr.String(), "0f1e2d3c") {
				t.Error("the panic's value reached the host")
			}
		})
	}
}
