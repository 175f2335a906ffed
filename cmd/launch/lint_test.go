package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// hostOutput matches code that writes to the process's own streams or the
// standard logger, bypassing the streams a command was given (and so the
// profile's rules for what the host may see).
var hostOutput = regexp.MustCompile(`\bos\.(Stderr|Stdout)\b|\blog\.(Print|Fatal|Panic)|(^|[^.\w])print(ln)?\(`)

// allowedHostOutput lists every place that may, with the reason.
var allowedHostOutput = map[string]string{
	"cmd/launch/main.go":                     "main hands the process's streams to run, which writes only through errcode and fixed warnings",
	"sandbox/supervise.go":                   "the runner gives the workload the stdio the supervisor chose for it, and refuses, in fixed text, to be started by hand",
	"cmd/containerd-shim-ampoule-v1/main.go": "main hands the process's streams to ctrshim.Main, whose lines to containerd's log follow the container's profile as launch's do",
	"ctrshim/events.go":                      "a failure to publish an event to containerd names the event's topic and containerd's error, nothing of the workload",
	"ctrshim/service.go":                     "a shim that cannot take the node's lock of starts says so and stays, naming the lock's error, nothing of the workload",
	"protect.go":                             "Protect moves the host's stderr to a descriptor of its own (os.Stderr), so that descriptor 2, where the Go runtime prints, is /dev/null; it writes nothing itself",
	"vm/guest/guest.go":                      "until the init-data names the profile, the guest's console says what failed of the VM's own setup (mounts, modules, ports): inputs the host gave it",
}

// TestNoStrayHostOutput scans the launcher's own code (not guests, bench
// tooling or tests) for writes that could reach the host around errcode.
func TestNoStrayHostOutput(t *testing.T) {
	root := testwasm.Root(t)
	skip := []string{"wasm-examples/", "sandbox/testdata/", "bench/", "conformance/probe/", "conformance/wasisuite/", "internal/testwasm/"}
	seen := map[string]bool{}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		for _, s := range skip {
			if strings.HasPrefix(rel, s) {
				return nil
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(data), "\n") {
			code := line
			if j := strings.Index(code, "//"); j >= 0 {
				code = code[:j]
			}
			if hostOutput.MatchString(code) {
				if _, ok := allowedHostOutput[rel]; !ok {
					t.Errorf("%s:%d writes to the host directly: %s", rel, i+1, strings.TrimSpace(line))
				}
				seen[rel] = true
			}
		}
		return nil
	})
	for file := range allowedHostOutput {
		if !seen[file] {
			t.Errorf("%s is allowed to write to the host but no longer does: drop it from the list", file)
		}
	}
}
