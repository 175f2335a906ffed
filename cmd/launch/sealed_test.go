package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/sealed"
	"github.com/ampoule-run/ampoule/tee/sim"
)

// privateWorkspaces gives the test's runs a runtime directory of their own
// in /dev/shm (XDG_RUNTIME_DIR, where workspaces are made first) and
// returns a function listing the workspaces in it: only the test's own, so
// that a stale workspace some earlier crashed run left in /dev/shm, swept
// while the test runs, or another process's, counts for nothing.
func privateWorkspaces(t *testing.T) func() []string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "ampoule-test-")
	if err != nil {
		t.Skipf("no /dev/shm for a private runtime directory: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if !sealed.MemoryBacked(dir) {
		t.Fatalf("%s is not memory-backed", dir)
	}
	t.Setenv("XDG_RUNTIME_DIR", dir)
	if bases := sealed.WorkspaceBases(); bases[0] != dir {
		t.Fatalf("workspaces would be made in %v, not %s", bases, dir)
	}
	return func() []string {
		names, _ := filepath.Glob(filepath.Join(dir, "ampoule-sealed-*"))
		return names
	}
}

// openStore opens a store the way the launcher does: the simulator's
// sealing key for the bundle's measurement under the profile.
func openStore(t *testing.T, simKey, bundle, profile, store string) []sealed.Entry {
	t.Helper()
	b, err := loader.FromFS(os.DirFS(bundle), bundle)
	if err != nil {
		t.Fatal(err)
	}
	be, err := sim.LoadOrCreate(simKey)
	if err != nil {
		t.Fatal(err)
	}
	key, err := be.SealingKey(context.Background(), loader.Measure(b, profile))
	if err != nil {
		t.Fatal(err)
	}
	entries, found, err := sealed.Load(store, key, b.Manifest.Sealed.MaxBytes)
	if err != nil || !found {
		t.Fatalf("opening %s: %v (found %v)", store, err, found)
	}
	return entries
}

func entryData(entries []sealed.Entry, path string) (string, bool) {
	for _, e := range entries {
		if e.Path == path {
			return string(e.Data), true
		}
	}
	return "", false
}

// TestSealedMountPersists runs the notebook example on the simulator: what
// it leaves in /sealed comes back on the next run, the host's file holds
// none of it in the clear, and no plaintext workspace outlives a run.
func TestSealedMountPersists(t *testing.T) {
	notebook := testwasm.Example(t, "notebook")
	dir := t.TempDir()
	simKey, store := filepath.Join(dir, "sim.key"), filepath.Join(dir, "notebook.sealed")
	workspaces := privateWorkspaces(t)

	r := launch(t, "run", cacheFlag(t), "--sim-key", simKey, "--sealed", store, notebook, "--", "canary-7f3a", "first")
	if r.code != 0 || !strings.Contains(r.stdout, "notebook: run 1\nrun 1: canary-7f3a first\n") {
		t.Fatalf("first run: %+v", r)
	}
	r = launch(t, "run", cacheFlag(t), "--sim-key", simKey, "--sealed", store, notebook, "--", "second")
	if r.code != 0 || !strings.Contains(r.stdout, "notebook: run 2\nrun 1: canary-7f3a first\nrun 2: second\n") {
		t.Fatalf("second run did not read the first run's notes: %+v", r)
	}
	data, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"canary-7f3a", "notes.txt", "count", "second"} {
		if bytes.Contains(data, []byte(s)) {
			t.Errorf("the host's store shows %q", s)
		}
	}
	if len(data) != sealed.HeaderSize+sealed.MinBucket+16 {
		t.Errorf("the store is %d bytes, not the smallest size class", len(data))
	}
	if st, _ := os.Stat(store); st.Mode().Perm() != 0o600 {
		t.Errorf("store mode %v", st.Mode())
	}
	entries := openStore(t, simKey, notebook, "debug", store)
	if got, _ := entryData(entries, "count"); got != "2\n" {
		t.Errorf("count in the store = %q", got)
	}
	if left := workspaces(); len(left) != 0 {
		t.Errorf("plaintext workspaces left behind: %v", left)
	}

	// The default store is per bundle name and profile, in the user's
	// state directory.
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	if r := launch(t, "run", cacheFlag(t), "--sim-key", simKey, notebook); r.code != 0 || !strings.Contains(r.stdout, "run 1") {
		t.Fatalf("default store: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(state, "ampoule", "sealed", "notebook.debug.sealed")); err != nil {
		t.Errorf("no store in the default place: %v", err)
	}
}

// TestSealedStoreRefusals: a store opens only under the measurement and
// the key that sealed it, and a damaged one is refused, each with its code
// and before the workload runs, leaving the store as it was.
func TestSealedStoreRefusals(t *testing.T) {
	notebook := testwasm.Example(t, "notebook")
	dir := t.TempDir()
	simKey, store := filepath.Join(dir, "sim.key"), filepath.Join(dir, "notebook.sealed")
	if r := launch(t, "run", cacheFlag(t), "--sim-key", simKey, "--sealed", store, notebook, "--", "hello"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	good, _ := os.ReadFile(store)
	manifest, _ := os.ReadFile(filepath.Join(notebook, "ampoule.toml"))
	otherVersion := copyBundle(t, notebook, strings.Replace(string(manifest), `version = "1.0.0"`, `version = "1.0.1"`, 1))
	policy := errcode.ClassPolicy.ExitStatus()

	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		args   []string
		code   errcode.Code
	}{
		{"another measurement", nil, []string{"--sim-key", simKey, otherVersion}, errcode.SealedStoreForeign},
		{"another profile", nil, []string{"--sim-key", simKey, "--profile", "staging", notebook}, errcode.SealedStoreForeign},
		{"another machine", nil, []string{"--sim-key", filepath.Join(dir, "other.key"), notebook}, errcode.SealedStoreForeign},
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, []string{"--sim-key", simKey, notebook}, errcode.SealedStoreTampered},
		{"flipped tag", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, []string{"--sim-key", simKey, notebook}, errcode.SealedStoreTampered},
		{"truncated", func(b []byte) []byte { return b[:len(b)-100] }, []string{"--sim-key", simKey, notebook}, errcode.SealedStoreTampered},
		{"not a store", func([]byte) []byte { return []byte("hello\n") }, []string{"--sim-key", simKey, notebook}, errcode.SealedStoreTampered},
		{"magic", func(b []byte) []byte { b[0] ^= 1; return b }, []string{"--sim-key", simKey, notebook}, errcode.SealedStoreTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := good
			if tc.damage != nil {
				want = tc.damage(bytes.Clone(good))
			}
			os.WriteFile(store, want, 0o600)
			r := launch(t, append([]string{"run", "--no-cache", "--sealed", store}, tc.args...)...)
			if r.code != policy || !strings.Contains(r.stderr, tc.code.String()) {
				t.Fatalf("want %v, got %+v", tc.code, r)
			}
			if strings.Contains(r.stdout, "notebook: run") {
				t.Error("the workload ran")
			}
			if got, _ := os.ReadFile(store); !bytes.Equal(got, want) {
				t.Error("the refused store was changed")
			}
		})
	}
	os.WriteFile(store, good, 0o600)
	if r := launch(t, "run", cacheFlag(t), "--sim-key", simKey, "--sealed", store, notebook); r.code != 0 || !strings.Contains(r.stdout, "run 1: hello") {
		t.Errorf("the good store no longer opens: %+v", r)
	}
	// One run at a time: while another holds the store, a run is refused
	// before it starts and the store is left as it was.
	held, _ := os.ReadFile(store)
	unlock, err := sealed.Lock(store)
	if err != nil {
		t.Fatal(err)
	}
	r := launch(t, "run", "--no-cache", "--sim-key", simKey, "--sealed", store, notebook)
	unlock()
	if r.code != errcode.ClassUsage.ExitStatus() || !strings.Contains(r.stderr, "E1025 sealed-store-busy") || strings.Contains(r.stdout, "notebook: run") {
		t.Errorf("a held store: %+v", r)
	}
	if got, _ := os.ReadFile(store); !bytes.Equal(got, held) {
		t.Error("a refused run changed the store")
	}
	// A sealed store needs a manifest with a sealed mount, and a writable
	// place, checked before the run.
	if r := launch(t, "run", "--sealed", store, testwasm.Example(t, "hello")); r.code != errcode.ClassUsage.ExitStatus() || !strings.Contains(r.stderr, "E1001") {
		t.Errorf("--sealed without [sealed]: %+v", r)
	}
	r = launch(t, "run", "--no-cache", "--sim-key", simKey, "--sealed", filepath.Join(dir, "missing", "x.sealed"), notebook)
	if r.code != errcode.ClassUsage.ExitStatus() || !strings.Contains(r.stderr, "E1030 sealed-dir-missing") || strings.Contains(r.stdout, "notebook: run") {
		t.Errorf("a store in a missing directory: %+v", r)
	}
}

// TestSealedSizeLimit: a run that leaves more than max_size is not sealed,
// with its own code; the previous store stays and opens.
func TestSealedSizeLimit(t *testing.T) {
	src := testwasm.Example(t, "notebook")
	bundle := copyBundle(t, src, "name = \"notebook\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/sealed\"\nmax_size = 300\n")
	dir := t.TempDir()
	simKey, store := filepath.Join(dir, "sim.key"), filepath.Join(dir, "nb.sealed")
	if r := launch(t, "run", cacheFlag(t), "--sim-key", simKey, "--sealed", store, bundle, "--", "short"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	good, _ := os.ReadFile(store)
	r := launch(t, "run", cacheFlag(t), "--sim-key", simKey, "--sealed", store, bundle, "--", strings.Repeat("long ", 80))
	if r.code != errcode.ClassLimit.ExitStatus() || !strings.Contains(r.stderr, "E4007 sealed-size-limit") {
		t.Fatalf("an oversized tree: %+v", r)
	}
	if got, _ := os.ReadFile(store); !bytes.Equal(got, good) {
		t.Error("the store changed after a refused seal")
	}
	r = launch(t, "run", cacheFlag(t), "--sim-key", simKey, "--sealed", store, bundle, "--", "again")
	if r.code != 0 || !strings.Contains(r.stdout, "notebook: run 2\nrun 1: short\nrun 2: again\n") {
		t.Errorf("after the refused seal: %+v", r)
	}
}

// TestSealedBoundedWhileRunning: a workload filling its sealed mount is
// ended at max_size while it runs (E4007), not after it has put its whole
// file-output limit (here 64 MiB against a max_size of 1 MiB) into the
// plaintext workspace in memory; the store is left as it was.
func TestSealedBoundedWhileRunning(t *testing.T) {
	crash := testwasm.Example(t, "crash")
	bundle := copyBundle(t, crash, "name = \"crash\"\nargs = [\"fill\", \"/sealed\"]\nprofiles = [\"debug\", \"staging\"]\n[sealed]\nmount = \"/sealed\"\nmax_size = \"1MiB\"\n[limits]\nfile_output = \"64MiB\"\nwall_time = \"30s\"\n")
	workspaces := privateWorkspaces(t)
	dir := t.TempDir()
	simKey, store := filepath.Join(dir, "sim.key"), filepath.Join(dir, "crash.sealed")
	for _, profile := range []string{"debug", "staging"} {
		r := launch(t, "run", "--profile", profile, "--no-cache", "--sim-key", simKey, "--sealed", store, bundle)
		if r.code != errcode.ClassLimit.ExitStatus() || !strings.Contains(r.stderr, "E4007 sealed-size-limit") || strings.Contains(r.stderr, "E4005") {
			t.Errorf("%s: %+v, want E4007 alone", profile, r)
		}
		if strings.Count(r.stderr, "E4007") != 1 {
			t.Errorf("%s: E4007 shown more than once: %s", profile, r.stderr)
		}
		if _, err := os.Stat(store); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a store was sealed: %v", profile, err)
		}
		if left := workspaces(); len(left) != 0 {
			t.Errorf("%s: workspaces left behind: %v", profile, left)
		}
	}
}

// TestSealedSurvivesWallTimeKill: a workload killed at its wall-time limit
// keeps what it wrote into the sealed mount, as a killed process keeps what
// it wrote to a disk; a real launch process is used.
func TestSealedSurvivesWallTimeKill(t *testing.T) {
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "module.wasm"), testwasm.Committed(t, filepath.Join("testdata", "write-then-spin.wat")), 0o644); err != nil {
		t.Fatal(err)
	}
	writeManifest(t, bundle, "name = \"spin\"\nprofiles = [\"debug\", \"staging\"]\n[sealed]\nmount = \"/sealed\"\n[limits]\nwall_time = \"500ms\"\n")
	dir := t.TempDir()
	simKey, store := filepath.Join(dir, "sim.key"), filepath.Join(dir, "spin.sealed")
	for _, profile := range []string{"debug", "staging"} {
		cmd := exec.Command(testwasm.Launch(t), "run", "--no-cache", "--profile", profile, "--sim-key", simKey, "--sealed", store, bundle)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != errcode.ClassLimit.ExitStatus() || !strings.Contains(string(out), "E4002") {
			t.Fatalf("%s: %v\n%s", profile, err, out)
		}
		if got, ok := entryData(openStore(t, simKey, bundle, profile, store), "alive.txt"); !ok || got != "written before the kill\n" {
			t.Errorf("%s: alive.txt = %q, %v", profile, got, ok)
		}
		os.Remove(store)
	}
	// A workload that writes more into its sealed mount than max_size is
	// stopped at that write (the workspace is memory), not at the wall-time
	// limit, and nothing of the run is sealed.
	writeManifest(t, bundle, "name = \"spin\"\nprofiles = [\"debug\", \"staging\"]\n[sealed]\nmount = \"/sealed\"\nmax_size = 40\n[limits]\nwall_time = \"10s\"\n")
	for _, profile := range []string{"debug", "staging"} {
		out, err := exec.Command(testwasm.Launch(t), "run", "--no-cache", "--profile", profile, "--sim-key", simKey, "--sealed", store, bundle).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != errcode.ClassLimit.ExitStatus() || !strings.Contains(string(out), "E4007") || strings.Contains(string(out), "E4002") {
			t.Errorf("%s: %v\n%s", profile, err, out)
		}
		if _, err := os.Stat(store); err == nil {
			t.Errorf("%s: a run past max_size was sealed", profile)
		}
	}
	writeManifest(t, bundle, "name = \"spin\"\nprofiles = [\"debug\", \"staging\"]\n[sealed]\nmount = \"/sealed\"\n[limits]\nwall_time = \"500ms\"\n")
	// When the store cannot be sealed either (here: its directory is
	// removed while the workload runs), the host sees both failures, each
	// as the profile shows errors, and the run's exit status.
	privateWorkspaces(t)
	for _, profile := range []string{"debug", "staging"} {
		storeDir := t.TempDir()
		cmd := exec.Command(testwasm.Launch(t), "run", "--no-cache", "--profile", profile, "--sim-key", simKey, "--sealed", filepath.Join(storeDir, "spin.sealed"), bundle)
		var outBuf testwasm.SyncBuffer
		cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if alive, _ := filepath.Glob(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "ampoule-sealed-*", "alive.txt")); len(alive) > 0 {
				break
			}
		}
		os.RemoveAll(storeDir)
		err := cmd.Wait()
		out := outBuf.String()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != errcode.ClassLimit.ExitStatus() || !strings.Contains(out, "E4002") || !strings.Contains(out, "E5005") {
			t.Errorf("%s: %v\n%s", profile, err, out)
		}
		if profile == "staging" {
			if lines := hostVisible(out); len(lines) != 2 || !staticLine.MatchString(lines[0]) || !staticLine.MatchString(lines[1]) {
				t.Errorf("staging shows %q", lines)
			}
		}
	}
}
