package ampoule_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// embedder is a program outside this module that embeds Ampoule as its
// README says: RunnerMain and Protect first in main, then Run, and it
// prints what Run returns as it is (err.Error()), as a careless embedder
// would. Its arguments: PROFILE BUNDLE SIMKEY [GUEST ARGS...].
const embedder = `package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
)

func main() {
	ampoule.RunnerMain()
	sigs := make(chan os.Signal, 1)
	if os.Args[1] != "debug" {
		if err := ampoule.Protect(sigs); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(5)
		}
	}
	res, err := ampoule.Run(context.Background(), os.Args[2], ampoule.Config{
		Profile: os.Args[1], Backend: "sim", SimKey: os.Args[3], Args: os.Args[4:], NoCache: true,
		Stdout: os.Stdout, Stderr: os.Stderr, Warnings: io.Discard,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(errcode.From(err).Code.Class().ExitStatus())
	}
	fmt.Printf("exit %d\n", res.ExitCode)
}
`

// TestExternalModuleEmbedsRun builds that program as a module of its own,
// with a replace directive pointing at this one, and runs the tiny
// bundle: under debug it prints the workload's line; under staging the
// same program shows only the error's code and ref for a manifest the
// profile cannot run, since the refusal and the hiding come from the
// library, not from the program. A guest argument (a host override) and a
// missing bundle path are the host's own input: their refusal keeps its
// detail under staging too, which names neither the argument's value nor
// anything of the bundle.
func TestExternalModuleEmbedsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program with the go command (about 20 s); run without -short")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module example.com/embedder\n\ngo 1.26\n\nrequire github.com/ampoule-run/ampoule v0.0.0\n\nreplace github.com/ampoule-run/ampoule => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(embedder)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "embedder")
	gocmd := "go"
	build := exec.Command(gocmd, "mod", "tidy")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	build = exec.Command(gocmd, "build", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bundle := filepath.Join(root, "testdata", "tiny")
	simKey := filepath.Join(dir, "sim.key")
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}
	if out, errOut, code := run("debug", bundle, simKey); code != 0 || out != "hello from a tiny module\nexit 0\n" || errOut != "" {
		t.Errorf("debug: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Under staging a run without overrides runs, its output withheld
	// (the tiny manifest names no log recipient).
	if out, errOut, code := run("staging", bundle, simKey); code != 0 || out != "exit 0\n" || errOut != "" {
		t.Errorf("staging: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// A host override is refused by the library, and the program, printing
	// the error as it is, shows the host the refusal of its own input, but
	// never the argument's value.
	out, errOut, code := run("staging", bundle, simKey, "--secret-flag")
	if code != 3 || out != "" || !strings.Contains(errOut, "the staging profile runs the manifest as measured") || strings.Contains(errOut, "secret-flag") {
		t.Errorf("staging with a host override: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// An error in what the bundle holds is hidden: its code and ref alone.
	bad := filepath.Join(dir, "bad")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(bundle, "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := "name = \"tiny\"\nversion = \"1\"\nprofiles = [\"staging\"]\ntenant_secret = \"s3cr3t\"\n"
	if err := os.WriteFile(filepath.Join(bad, "module.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "ampoule.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	static := regexp.MustCompile(`^E1008 manifest-invalid \(ref [0-9a-f]{16}\)\n$`)
	if out, errOut, code := run("staging", bad, simKey); code != 2 || out != "" || !static.MatchString(errOut) {
		t.Errorf("staging, a manifest with an unknown key: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The same override under debug is allowed, and detailed errors are
	// debug's: a missing bundle names itself.
	if _, errOut, code := run("debug", filepath.Join(dir, "missing"), simKey); code != 2 || !strings.Contains(errOut, "missing does not exist") {
		t.Errorf("debug, a missing bundle: exit %d, stderr %q", code, errOut)
	}
	// A missing bundle is the host's own path: named under staging too.
	if _, errOut, code := run("staging", filepath.Join(dir, "missing"), simKey); code != 2 || !strings.Contains(errOut, "missing does not exist") {
		t.Errorf("staging, a missing bundle: exit %d, stderr %q", code, errOut)
	}
}
