package ampoule_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/codecache"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/tee"
)

// freshCrash is the crash example's module with a custom section of
// random bytes appended: the same program under a measurement no other
// run has compiled, so that its first run finds no code in any cache.
func freshCrash(t *testing.T) []byte {
	t.Helper()
	module := bytes.Clone(testwasm.Module(t, "crash"))
	name := "ampoule-test"
	payload := make([]byte, 16)
	rand.Read(payload)
	content := append(append([]byte{byte(len(name))}, name...), payload...)
	return append(append(module, 0, byte(len(content))), content...)
}

// crashBundle is a bundle of module that runs the crash example with args
// under debug and staging, logging to id under staging.
func crashBundle(t *testing.T, module []byte, id *logging.Identity, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(a)
	}
	manifest := fmt.Sprintf("name = \"crash\"\nversion = \"1.0.0\"\nprofiles = [\"debug\", \"staging\"]\nargs = [%s]\nlog_recipient = %q\n[limits]\nmemory = \"64MiB\"\nwall_time = \"60s\"\n",
		strings.Join(quoted, ", "), id.Recipient().String())
	if err := os.WriteFile(filepath.Join(dir, "ampoule.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runnerBelow is the pid of a runner process descended from pid, or 0.
func runnerBelow(pid int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); !bytes.Contains(cmdline, []byte(sandbox.RunnerArg)) {
			continue
		}
		for q := p; q > 1; q = parentOf(q) {
			if q == pid {
				return p
			}
		}
	}
	return 0
}

// procStatus is the value of one field of /proc/PID/status, or "".
func procStatus(pid int, field string) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":\t"); ok {
			return v
		}
	}
	return ""
}

func parentOf(pid int) int {
	p, _ := strconv.Atoi(procStatus(pid, "PPid"))
	return p
}

// confinedRunner waits for a runner below pid to confine itself with
// seccomp, which it does just before the guest's first instruction, and
// returns its pid.
func confinedRunner(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if r := runnerBelow(pid); r != 0 && procStatus(r, "Seccomp") == "2" {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no runner started its guest")
	return 0
}

// compiledIn lists the compiled entries wazero has written under dir (its
// temporary files are not entries).
func compiledIn(dir string) []string {
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && len(d.Name()) == 64 && strings.HasPrefix(filepath.Base(filepath.Dir(p)), "wazero-") {
			names = append(names, p)
		}
		return nil
	})
	return names
}

// stagingRun runs bundle under staging with the authenticated cache's
// tiers at disk and memory and returns the workload's output and the
// runtime's records from the tenant's log.
func stagingRun(t *testing.T, bundle string, id *logging.Identity, simKey, disk, memory string) (stdout, runtime string) {
	t.Helper()
	var sink bufferSink
	_, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
		Profile: "staging", Backend: tee.KindSim, SimKey: simKey, CacheDir: disk, CodeMemory: memory,
		InterpretFirst: true, Warnings: io.Discard,
		LogSink: func() (io.WriteCloser, error) { return &sink, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ampoule.OpenLog(&sink, id, ampoule.LogCheck{})
	if err != nil {
		t.Fatal(err)
	}
	runtime, stdout = logText(t, r)
	return stdout, runtime
}

// newMemoryTier is an empty memory tier, as a new VM has.
func newMemoryTier(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "ampoule-vm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "code")
}

// TestInterpretFirstStoppedUnderStaging: the host stops and continues a
// staging run's runner while its guest is interpreted and its module
// compiles into the authenticated cache's memory tier. The run ends with
// its output; the entry it stores on the host's disk is whole and
// authenticated: a new VM's run verifies it and compiles from it. Torn on
// the disk, it is refused, never executed: that run is interpreted again
// and stores a whole entry, which the next new VM uses. Nothing is left
// running, open or waiting.
func TestInterpretFirstStoppedUnderStaging(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := crashBundle(t, freshCrash(t), id, "nap", "2000")
	simKey, disk := filepath.Join(t.TempDir(), "sim.key"), t.TempDir()
	fds, goroutines := openFDs(t), goruntime.NumGoroutine()

	memory := newMemoryTier(t)
	type outcome struct {
		stdout, runtime string
	}
	done := make(chan outcome, 1)
	go func() {
		out, rt := stagingRun(t, bundle, id, simKey, disk, memory)
		done <- outcome{out, rt}
	}()
	runner := confinedRunner(t, os.Getpid())
	if code := compiledIn(memory); len(code) > 0 {
		t.Fatalf("the compile had ended before the runner was stopped: %q", code)
	}
	for range 3 {
		syscall.Kill(runner, syscall.SIGSTOP)
		time.Sleep(150 * time.Millisecond)
		syscall.Kill(runner, syscall.SIGCONT)
		time.Sleep(50 * time.Millisecond)
	}
	var first outcome
	select {
	case first = <-done:
	case <-time.After(2 * time.Minute):
		syscall.Kill(runner, syscall.SIGKILL)
		t.Fatal("the stopped run did not end")
	}
	if first.stdout != "napped\n" || !strings.Contains(first.runtime, "cache=interpreted") || !strings.Contains(first.runtime, "compiled code stored, authenticated") {
		t.Fatalf("the stopped run: stdout %q, log:\n%s", first.stdout, first.runtime)
	}
	entries, _ := filepath.Glob(filepath.Join(disk, "*.code"))
	if len(entries) != 1 {
		t.Fatalf("the disk tier holds %q, want one entry", entries)
	}

	expect := func(step string, want ...string) {
		t.Helper()
		out, rt := stagingRun(t, bundle, id, simKey, disk, newMemoryTier(t))
		if out != "napped\n" {
			t.Errorf("%s: the workload wrote %q", step, out)
		}
		for _, w := range want {
			if !strings.Contains(rt, w) {
				t.Errorf("%s: the log does not say %q:\n%s", step, w, rt)
			}
		}
	}
	expect("a new VM", "disk hit, verified", "cache=hit")
	whole, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(entries[0], whole[:len(whole)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	expect("a new VM, the entry torn", "compilation cache entry refused", "cache=interpreted", "compiled code stored, authenticated")
	if now, err := os.ReadFile(entries[0]); err != nil || len(now) != len(whole) {
		t.Errorf("the entry stored in place of the torn one has %d bytes (%v), want %d", len(now), err, len(whole))
	}
	expect("a new VM after that", "disk hit, verified", "cache=hit")

	deadline := time.Now().Add(5 * time.Second)
	for (runnerBelow(os.Getpid()) != 0 || openFDs(t) > fds || goruntime.NumGoroutine() > goroutines) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r := runnerBelow(os.Getpid()); r != 0 {
		t.Errorf("runner %d left", r)
	}
	if n := openFDs(t); n > fds {
		t.Errorf("%d descriptors open after the runs, %d before", n, fds)
	}
	if n := goruntime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines after the runs, %d before", n, goroutines)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestInterpretFirstSIGTERM sends SIGTERM to a real launcher while its
// runner's module compiles into the cache beside the interpreted guest.
// With the guest still running the run ends at once with E2003 and exit
// status 130; with the guest ended, its outcome decided and its output
// written, the run ends at once with that outcome (exit 0), the compile
// abandoned. No runner outlives it, and what the cache holds afterwards
// is whole or absent: the next run, from it, ends with its output, and
// under staging no entry of it is refused.
func TestInterpretFirstSIGTERM(t *testing.T) {
	bin := testwasm.Launch(t)
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	simKey := filepath.Join(t.TempDir(), "sim.key")
	for _, tc := range []struct {
		name, profile string
		nap           string // how long the guest runs, in ms
	}{
		{"debug/guest-running", "debug", "3000"},
		{"debug/guest-ended", "debug", "1"},
		{"staging/guest-running", "staging", "3000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			module := freshCrash(t)
			disk := t.TempDir()
			args := []string{"run", "--profile", tc.profile, "--interpret-first", "--cache-dir", disk, "-v"}
			var memory string
			if tc.profile == "staging" {
				// The launcher's own memory tier, in /dev/shm: this
				// module's directory there is new, and goes with the test.
				c, err := codecache.Open(module, codecache.Options{})
				if err != nil {
					t.Fatal(err)
				}
				memory = c.Dir()
				t.Cleanup(func() { os.RemoveAll(memory) })
				args = append(args, "--backend", "sim", "--sim-key", simKey)
			}
			launchRun := func(nap string, extra ...string) (*exec.Cmd, *testwasm.SyncBuffer, *testwasm.SyncBuffer) {
				t.Helper()
				bundle := crashBundle(t, module, id, "nap", nap)
				cmd := exec.Command(bin, append(append(append([]string{}, args...), extra...), bundle)...)
				var stdout, stderr testwasm.SyncBuffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				return cmd, &stdout, &stderr
			}
			logOut := filepath.Join(t.TempDir(), "first.log")
			var extra []string
			if tc.profile == "staging" {
				extra = []string{"--log-out", logOut}
			}
			cmd, stdout, stderr := launchRun(tc.nap, extra...)
			exited := make(chan struct{})
			go func() { cmd.Wait(); close(exited) }()
			defer func() {
				select {
				case <-exited:
				default:
					cmd.Process.Kill()
					<-exited
				}
			}()

			var runner int
			deadline := time.Now().Add(time.Minute)
			switch {
			case tc.profile == "staging":
				runner = confinedRunner(t, cmd.Process.Pid)
				if code := compiledIn(memory); len(code) > 0 {
					t.Fatalf("the compile had ended before SIGTERM: %q", code)
				}
			default:
				want, in := "crash: mode nap", stderr
				if tc.nap == "1" {
					want, in = "napped\n", stdout
				}
				for !strings.Contains(in.String(), want) && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				if runner = runnerBelow(cmd.Process.Pid); runner == 0 {
					t.Fatalf("no runner; stderr:\n%s", stderr.String())
				}
				if marks, _ := filepath.Glob(filepath.Join(disk, "compiled-*")); len(marks) > 0 {
					t.Fatal("the compile had ended before SIGTERM")
				}
			}
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Fatalf("the launcher did not end after SIGTERM; stderr:\n%s", stderr.String())
			}
			code := cmd.ProcessState.ExitCode()
			switch {
			case tc.nap == "1":
				if code != 0 || stdout.String() != "napped\n" {
					t.Errorf("after SIGTERM, the guest ended: exit %d, want 0 with its output; stdout %q, stderr:\n%s", code, stdout.String(), stderr.String())
				}
			case code != errcode.ClassInterrupted.ExitStatus() || !strings.Contains(stdout.String()+stderr.String(), errcode.Interrupted.String()):
				t.Errorf("after SIGTERM: exit %d, want %d with %v; stdout %q, stderr:\n%s", code, errcode.ClassInterrupted.ExitStatus(), errcode.Interrupted, stdout.String(), stderr.String())
			}
			deadline = time.Now().Add(5 * time.Second)
			for procStatus(runner, "State") != "" && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if s := procStatus(runner, "State"); s != "" {
				t.Errorf("the runner outlived its launcher: %s", s)
			}

			// What the cache holds now is used by the next run, which
			// ends with its output whatever the stopped run left.
			if tc.profile == "staging" {
				stored, _ := filepath.Glob(filepath.Join(disk, "*.code"))
				t.Logf("the disk tier holds %d entries after SIGTERM", len(stored))
				os.RemoveAll(memory) // a new VM: the disk tier is what the next run has
				logOut2 := filepath.Join(t.TempDir(), "second.log")
				cmd, _, stderr := launchRun("1", "--log-out", logOut2)
				if err := cmd.Wait(); err != nil {
					t.Fatalf("the run after: %v\n%s", err, stderr.String())
				}
				f, err := os.Open(logOut2)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				r, err := ampoule.OpenLog(f, id, ampoule.LogCheck{})
				if err != nil {
					t.Fatal(err)
				}
				rt, out := logText(t, r)
				if out != "napped\n" || strings.Contains(rt, "refused") {
					t.Errorf("the run after: stdout %q, log:\n%s", out, rt)
				}
				return
			}
			t.Logf("the cache holds %d entries after SIGTERM", len(compiledIn(disk)))
			cmd, stdout, stderr = launchRun("1")
			if err := cmd.Wait(); err != nil || stdout.String() != "napped\n" {
				t.Errorf("the run after: %v, stdout %q\n%s", err, stdout.String(), stderr.String())
			}
			if s := stderr.String(); !strings.Contains(s, "cache=interpreted") && !strings.Contains(s, "cache=hit") {
				t.Errorf("the run after neither interpreted nor compiled from the cache:\n%s", s)
			}
		})
	}
}
