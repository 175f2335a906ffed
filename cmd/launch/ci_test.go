package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// TestMakeTestRunsEveryCheck: CI runs exactly 'make test', and what
// 'make test' runs (read from make's own dry run, recursion included)
// reaches vet, staticcheck and govulncheck at pinned versions over every
// package with a pinned vulnerability database, every package's tests, and
// every package's tests again under the race detector; go.mod names the
// toolchain the Makefile runs. A check dropped from CI, unpinned or
// narrowed to some packages fails here.
func TestMakeTestRunsEveryCheck(t *testing.T) {
	root := testwasm.Root(t)
	ci, err := os.ReadFile(filepath.Join(root, ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var commands []string
	for _, line := range strings.Split(string(ci), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "set ") || strings.HasPrefix(line, "cd ") {
			continue
		}
		commands = append(commands, line)
	}
	if len(commands) != 1 || commands[0] != "make test" {
		t.Errorf(".ci/run runs %q, not exactly make test", commands)
	}

	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^toolchain go1\.\d+\.\d+$`).Match(mod) {
		t.Error("go.mod names no toolchain release for the Makefile to run")
	}

	cmd := exec.Command("make", "-n", "test")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n test: %v\n%s", err, out)
	}
	pinned := `@v\d+\.\d+\.\d+`
	for _, want := range []struct{ what, re string }{
		{"go vet over every package", `(?m)^\S*go vet \./\.\.\.$`},
		{"staticcheck, pinned, over every package", `(?m)^\S*go run honnef\.co/go/tools/cmd/staticcheck` + pinned + ` \./\.\.\.$`},
		{"govulncheck, pinned, with a database, over every package", `(?m)^\S*go run golang\.org/x/vuln/cmd/govulncheck` + pinned + ` -db "file://\$db" \./\.\.\.$`},
		{"a pinned vulnerability database", `go mod download golang\.org/x/vulndb@v0\.0\.0-\d{14}-[0-9a-f]{12} `},
		{"every package's tests", `(?m)^\S*go test -count=1 -timeout \w+ \./\.\.\.$`},
		{"every package's tests under the race detector", `(?m)^\S*go test -race -short -count=1 -timeout \w+ \./\.\.\.$`},
	} {
		if !regexp.MustCompile(want.re).Match(out) {
			t.Errorf("make test does not run %s (/%s/):\n%s", want.what, want.re, out)
		}
	}
}
