package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/sandbox"
)

// hostileBundle makes a bundle of the corpus's committed module with tight
// limits (testwasm.HostileBundle).
func hostileBundle(t *testing.T, tc testwasm.Hostile) string {
	t.Helper()
	return testwasm.HostileBundle(t, tc)
}

// runnersLeft lists runner processes that outlived their supervisor (an
// orphan, adopted by init) or that this process started and did not reap.
// Runners of other test binaries, still under their supervisors, are not
// counted.
func runnersLeft() []string {
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(b, []byte(sandbox.RunnerArg)) {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if ppid, ok := strings.CutPrefix(line, "PPid:\t"); ok && (ppid == "1" || ppid == fmt.Sprint(os.Getpid())) {
				left = append(left, e.Name())
			}
		}
	}
	return left
}

// TestHostileCorpus runs every module of wasm-examples/hostile, as committed
// beside its .wat, under debug and staging
// through a real launch process, and under production's gate and seccomp
// (kill) through the library, on a fake SEV-SNP device, since production
// refuses the simulator backend. Each must end with its
// code, within its limits, and leave no runner, descriptor or goroutine
// behind.
func TestHostileCorpus(t *testing.T) {
	bin := testwasm.Launch(t)
	exe := runnerExe(t)
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range testwasm.HostileCorpus(t) {
		t.Run(tc.Name, func(t *testing.T) {
			bundle := hostileBundle(t, tc)
			for _, profile := range []string{"debug", "staging"} {
				args := []string{"run", "--profile", profile}
				if profile == "debug" {
					args = append(args, "--no-cache")
				}
				cmd := exec.Command(bin, append(args, bundle)...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				start := time.Now()
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan struct{})
				go func() { cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					t.Fatalf("%s: launch hung", profile)
				}
				took := time.Since(start)
				got := cmd.ProcessState.ExitCode()
				want := tc.Expect.Class().ExitStatus()
				if tc.Expect == 0 {
					want = 0
				}
				if profile == "debug" && tc.DebugExit >= 0 {
					want = tc.DebugExit
				}
				if got != want {
					t.Errorf("%s: exit %d, want %d\n%s", profile, got, want, stderr.String())
				}
				if tc.Expect != 0 && !(profile == "debug" && tc.DebugExit >= 0) && !strings.Contains(stderr.String(), tc.Expect.String()) {
					t.Errorf("%s: stderr lacks %v:\n%s", profile, tc.Expect, stderr.String())
				}
				if strings.Contains(stderr.String(), "panic:") || strings.Contains(stderr.String(), "goroutine ") && profile == "staging" {
					t.Errorf("%s: the launcher crashed:\n%s", profile, stderr.String())
				}
				if took > 20*time.Second {
					t.Errorf("%s: took %v, far past its wall time", profile, took)
				}
				// A bound on the implementation, not a performance target:
				// ended at its 1 s wall time (and the runner's grace), a
				// process is done within 4 s even on a loaded machine;
				// refused before compiling, well within its wall time.
				if tc.Expect == errcode.WallTimeLimit && took > 4*time.Second {
					t.Errorf("%s: a 1 s wall time ended the run only after %v", profile, took)
				}
				if tc.Expect.Class() == errcode.ClassUsage && took > 2*time.Second {
					t.Errorf("%s: refusing the module took %v, though it is refused before it compiles", profile, took)
				}
			}
			deadline := time.Now().Add(3 * time.Second)
			for len(runnersLeft()) > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if left := runnersLeft(); len(left) > 0 {
				t.Errorf("runner processes left behind: %v", left)
			}

			// Production: the same bundle through the library.
			fdsBefore, gBefore := openFDs(t), goruntime.NumGoroutine()
			// A fake SEV-SNP device with debugging off stands for the TEE
			// production needs.
			be, _, _ := snpfake.AnyBackend(t, snpfake.Options{Debug: false})
			res, err := ampoule.Run(context.Background(), bundle, ampoule.Config{Profile: "production", TEE: be, Runner: exe, Warnings: io.Discard})
			gotCode := errcode.Code(0)
			if err != nil {
				gotCode = errcode.From(err).Code
			} else if res.ExitCode != 0 {
				gotCode = errcode.WorkloadExit
			}
			if gotCode != tc.Expect {
				t.Errorf("production: %v (exit %d), want %v", err, res.ExitCode, tc.Expect)
			}
			deadline = time.Now().Add(3 * time.Second)
			for (openFDs(t) > fdsBefore || goruntime.NumGoroutine() > gBefore) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := openFDs(t); n > fdsBefore {
				t.Errorf("production: %d descriptors open after the run, %d before", n, fdsBefore)
			}
			if n := goruntime.NumGoroutine(); n > gBefore {
				t.Errorf("production: %d goroutines after the run, %d before", n, gBefore)
			}
		})
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestHostileFiles: a non-WebAssembly file and a module above the size
// limit are refused before anything runs, under every profile that runs.
func TestHostileFiles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		module func(path string) error
		code   errcode.Code
	}{
		{"elf-binary", func(p string) error { return os.WriteFile(p, []byte("\x7fELF\x02\x01\x01\x00"), 0o644) }, errcode.ModuleNotWasm},
		{"giant-module", func(p string) error {
			f, err := os.Create(p)
			if err != nil {
				return err
			}
			defer f.Close()
			f.Write([]byte{0, 'a', 's', 'm', 1, 0, 0, 0})
			return f.Truncate(loader.MaxModuleBytes + 1) // sparse: no disk is used
		}, errcode.BundleTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bundle := t.TempDir()
			if err := tc.module(filepath.Join(bundle, "module.wasm")); err != nil {
				t.Fatal(err)
			}
			writeManifest(t, bundle, "name = \"x\"\nprofiles = [\"debug\", \"staging\"]\n")
			for _, profile := range []string{"debug", "staging"} {
				r := launch(t, "run", "--profile", profile, bundle)
				if r.code != tc.code.Class().ExitStatus() || !strings.Contains(r.stderr, tc.code.String()) {
					t.Errorf("%s: %+v, want %v", profile, r, tc.code)
				}
			}
		})
	}
}
