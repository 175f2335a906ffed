package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// TestStdinIsMeasured pipes a canary into a real launch process whose
// workload echoes its stdin. Under staging the workload reads it only when
// the measured manifest says stdin = "host", and reads end of file when the
// manifest does not say or says "none"; under debug an unsaid stdin is the
// host's. The tenant's log shows what the workload read.
func TestStdinIsMeasured(t *testing.T) {
	bin := testwasm.Launch(t)
	crash := testwasm.Example(t, "crash")
	key, recipient := tenant(t)
	const input = "STDIN-CANARY-5e1f\n"
	for _, tc := range []struct {
		profile, line string
		reads         bool
	}{
		{"staging", "", false},
		{"staging", "stdin = \"none\"\n", false},
		{"staging", "stdin = \"host\"\n", true},
		{"debug", "", true},
		{"debug", "stdin = \"none\"\n", false},
		{"debug", "stdin = \"host\"\n", true},
	} {
		t.Run(tc.profile+"/"+strings.TrimSpace(tc.line), func(t *testing.T) {
			bundle := copyBundle(t, crash, "name = \"crash\"\nargs = [\"echo\"]\nprofiles = [\"debug\", \"staging\"]\nlog_recipient = \""+recipient+"\"\n"+tc.line)
			logFile := filepath.Join(t.TempDir(), "run.log")
			args := []string{"run", "--profile", tc.profile, bundle}
			if tc.profile == "staging" {
				args = []string{"run", "--profile", tc.profile, "--log-out", logFile, bundle}
			}
			cmd := exec.Command(bin, args...)
			cmd.Stdin = strings.NewReader(input)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			seen := stdout.String()
			if tc.profile == "staging" {
				if stdout.Len() != 0 || strings.Contains(stderr.String(), "CANARY") {
					t.Errorf("the host saw the workload's output: %q %q", stdout.String(), stderr.String())
				}
				var dout, derr bytes.Buffer
				if code := run(t.Context(), []string{"logs", "decrypt", "--identity", key, logFile}, strings.NewReader(""), &dout, &derr); code != 0 {
					t.Fatalf("decrypt: %d %s", code, derr.String())
				}
				seen = dout.String()
			}
			want := "echo: 0 bytes, <nil>"
			if tc.reads {
				want = input + "echo: 18 bytes, <nil>"
			}
			if !strings.Contains(seen, want) || !tc.reads && strings.Contains(seen, "CANARY") {
				t.Errorf("the workload's output %q lacks %q", seen, want)
			}
		})
	}
}
