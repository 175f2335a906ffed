package main

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// TestTranscripts runs every testdata/transcripts/*.txt: commands as a
// user types them, with the output and exit status they must give (the
// format of testscript, as age's cmd/age/testdata is). Each script runs
// in a fresh directory with its own HOME and XDG directories, the launch
// binary on PATH as launch, $EXAMPLES naming wasm-examples, $TESTDATA the
// repository's testdata (its sample evidence) and $GO the
// go command, with the test's own Go caches (goToolchainEnv). The debug
// profile's compile cache, $XDG_CACHE_HOME/ampoule/wazero, is a link to
// one directory all the scripts share, so that each example compiles once
// per run of the test rather than once per script; a script about that
// cache itself removes the link first (cache.txt). Beside
// testscript's own commands, 'status N PROGRAM ARGS...' runs a program as
// exec does and requires exit status N exactly.
func TestTranscripts(t *testing.T) {
	bin := testwasm.Launch(t)
	examples := filepath.Join(testwasm.Root(t), "wasm-examples")
	for _, e := range []string{"hello", "crash", "notebook", "files"} {
		testwasm.Example(t, e)
	}
	goEnv := goToolchainEnv(t)
	binDir, cache := t.TempDir(), sharedCache(t)
	if err := os.Symlink(bin, filepath.Join(binDir, "launch")); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:  filepath.Join("testdata", "transcripts"),
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){"status": status, "waitsock": waitsock},
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", binDir+string(os.PathListSeparator)+"/usr/bin:/bin")
			env.Setenv("EXAMPLES", examples)
			env.Setenv("TESTDATA", filepath.Join(testwasm.Root(t), "testdata"))
			home := filepath.Join(env.WorkDir, "home")
			env.Setenv("HOME", home)
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			env.Setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache"))
			if err := os.MkdirAll(filepath.Join(home, ".cache", "ampoule"), 0o700); err != nil {
				return err
			}
			if err := os.Symlink(cache, filepath.Join(home, ".cache", "ampoule", "wazero")); err != nil {
				return err
			}
			env.Setenv("XDG_STATE_HOME", filepath.Join(home, ".local", "state"))
			for k, v := range goEnv {
				env.Setenv(k, v)
			}
			return nil
		},
	})
}

// goToolchainEnv is what a transcript needs to build a module with the Go
// toolchain the tests run with: $GO, the go command on the test's PATH, and
// its caches, so that a script's own HOME does not make it build the
// standard library afresh. go is on PATH wherever the tests run (go test
// puts its own toolchain there).
func goToolchainEnv(t *testing.T) map[string]string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the transcripts build modules with the go command, which is not on PATH: %v", err)
	}
	out, err := exec.Command(gocmd, "env", "GOCACHE", "GOMODCACHE", "GOPATH", "GOTOOLCHAIN", "GOPROXY").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	vals := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(vals) != 5 {
		t.Fatalf("go env printed %q", out)
	}
	return map[string]string{"GO": gocmd, "GOCACHE": vals[0], "GOMODCACHE": vals[1], "GOPATH": vals[2], "GOTOOLCHAIN": vals[3], "GOPROXY": vals[4]}
}

// status runs a program and checks its exit status.
func status(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N PROGRAM [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status %q is not a number", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = exit.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// waitsock waits until a server answers on the unix socket, for at most
// 30 s.
func waitsock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitsock PATH")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", ts.MkAbs(args[0]))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no server answers on %s: %v", args[0], err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
