package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwarm"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/sandbox"
)

// TestMain lets the test binary serve as the runner child that run() starts
// through os.Executable.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == sandbox.RunnerArg {
		os.Exit(sandbox.RunChild())
	}
	if pid := os.Getenv(filterProbeEnv); pid != "" {
		os.Exit(filterProbe(pid))
	}
	code := m.Run()
	testwasm.RemoveCacheDir()
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

func launch(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, runner: runnerExe(t)}
	code := env.run(context.Background(), args)
	return result{code, stdout.String(), stderr.String()}
}

// cacheFlag keeps compiled code in the test binary's shared cache
// (testwasm.CacheDir), never the user's: each example compiles once per
// package run, before the first test that uses it runs (warmCache). The
// tests using it check what a run does, not the cache.
func cacheFlag(t *testing.T) string { return "--cache-dir=" + sharedCache(t) }

// warmed lists the examples warmCache compiles: those the tests run with
// cacheFlag or the transcripts (which share the cache) run under debug.
var warmed = []string{"hello", "crash", "files", "notebook", "leak", "secret-consumer"}

var warmOnce sync.Once

// sharedCache is testwasm.CacheDir with the examples compiled into it,
// once per test binary, by warm runners whose compile bound is minutes:
// the first compile of an example on a loaded machine takes 10-30 s, past
// the 5-10 s an example's own wall time allows, and no test using the
// cache is about compile time. A warm-up that fails is reported by the
// test that asked first; later runs then compile for themselves.
func sharedCache(t *testing.T) string {
	t.Helper()
	dir := testwasm.CacheDir(t)
	warmOnce.Do(func() {
		testwarm.Compile(t, runnerExe(t), dir, warmed...)
	})
	return dir
}

var staticLine = regexp.MustCompile(`^launch: E\d{4} [a-z-]+ \(ref [0-9a-f]{16}\)$`)

// hostVisible returns the stderr lines a static profile printed, with the
// fixed warnings (simulator, withheld output) removed.
func hostVisible(stderr string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if l != "" && l+"\n" != simWarning && l+"\n" != withheldWarning {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestRunHello(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	r := launch(t, "run", cacheFlag(t), hello, "--", "Grace")
	if r.code != 0 || !strings.Contains(r.stdout, "Hello, tenant Grace, from inside wazero!") {
		t.Fatalf("%+v", r)
	}
	if !strings.Contains(r.stderr, "insecure") {
		t.Error("the simulator did not say it is insecure")
	}
}

func TestDebugShowsDetailAndPassesExitCode(t *testing.T) {
	crash := testwasm.Example(t, "crash")
	r := launch(t, "run", cacheFlag(t), crash, "--", "exit", "42")
	if r.code != 42 {
		t.Errorf("exit code = %d, want the workload's 42", r.code)
	}
	r = launch(t, "run", cacheFlag(t), crash, "--", "trap")
	if r.code != errcode.ClassWorkload.ExitStatus() || !strings.Contains(r.stderr, "E2001 workload-trap: ") || !strings.Contains(r.stderr, "out of bounds memory access") || !strings.Contains(r.stderr, "launch: hint: ") {
		t.Errorf("trap under debug: %+v", r)
	}
}

func TestStaticProfilesShowOnlyCodeAndRef(t *testing.T) {
	crash := testwasm.Example(t, "crash")
	bundle := copyBundle(t, crash, "name = \"crash\"\nprofiles = [\"debug\", \"staging\", \"production\"]\nargs = [\"CANARY-7d1e\", \"trap\"]\n")
	for _, tc := range []struct {
		name     string
		manifest string
		code     errcode.Code
	}{
		{"trap", "args = [\"trap\"]", errcode.WorkloadTrap},
		{"exit", "args = [\"exit\", \"9\"]", errcode.WorkloadExit},
		{"panic", "args = [\"panic\"]", errcode.WorkloadExit},
		{"memory", "args = [\"oom\"]", errcode.MemoryLimit},
		{"output", "args = [\"flood\"]", errcode.OutputLimit},
		{"bad manifest", "args = [\"trap\"]\nlimits = { memory = \"CANARY-7d1e\" }", errcode.ManifestInvalid},
		{"unknown key", "args = [\"trap\"]\nCANARY-7d1e = 1", errcode.ManifestInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeManifest(t, bundle, "name = \"crash\"\nprofiles = [\"debug\", \"staging\"]\n"+tc.manifest+"\n[env]\nSECRET = \"CANARY-7d1e\"\n")
			r := launch(t, "run", "--profile", "staging", bundle)
			lines := hostVisible(r.stderr)
			if len(lines) != 1 || !staticLine.MatchString(lines[0]) || !strings.HasPrefix(lines[0], "launch: "+tc.code.String()+" ") {
				t.Errorf("stderr = %q, want one static line with %v", r.stderr, tc.code)
			}
			if r.code != tc.code.Class().ExitStatus() {
				t.Errorf("exit = %d, want %d", r.code, tc.code.Class().ExitStatus())
			}
			if strings.Contains(r.stdout+r.stderr, "CANARY") || strings.Contains(r.stdout+r.stderr, "crash: mode") {
				t.Errorf("the host saw workload data: %+v", r)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
	// Every run gets its own reference.
	a := launch(t, "run", "--profile", "staging", bundle)
	b := launch(t, "run", "--profile", "staging", bundle)
	if a.stderr == b.stderr {
		t.Error("two runs printed the same reference")
	}
}

func TestStaticSuccessPrintsNothing(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	r := launch(t, "run", "--profile", "staging", hello)
	if r.code != 0 || r.stdout != "" || len(hostVisible(r.stderr)) != 0 {
		t.Errorf("%+v", r)
	}
}

func TestPolicyRefusals(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	module := filepath.Join(hello, "module.wasm")
	debugOnly := copyBundle(t, hello, "name = \"hello\"\nprofiles = [\"debug\"]\n")
	for _, tc := range []struct {
		name string
		args []string
		code errcode.Code
	}{
		{"production on sim", []string{"run", "--profile", "production", "--backend", "sim", hello}, errcode.BackendRefused},
		{"production without a TEE", []string{"run", "--profile", "production", hello}, errcode.TEEUnavailable},
		{"bare module in staging", []string{"run", "--profile", "staging", module}, errcode.BareModuleRefused},
		{"profile not in manifest", []string{"run", "--profile", "staging", debugOnly}, errcode.ProfileNotAllowed},
		{"--dir in staging", []string{"run", "--profile", "staging", "--dir", "/tmp::/tmp", hello}, errcode.HostOverrideRefused},
		{"--env in staging", []string{"run", "--profile", "staging", "--env", "A=B", hello}, errcode.HostOverrideRefused},
		{"args in staging", []string{"run", "--profile", "staging", hello, "--", "x"}, errcode.HostOverrideRefused},
		{"trace in staging", []string{"run", "--profile", "staging", "--trace-calls", hello}, errcode.HostOverrideRefused},
		{"audit in staging", []string{"run", "--profile", "staging", "--audit", hello}, errcode.HostOverrideRefused},
		{"audit-json alone", []string{"run", "--audit-json", "x.json", hello}, errcode.Usage},
		{"audit without --suggest", []string{"audit"}, errcode.Usage},
		{"audit of a missing file", []string{"audit", "--suggest", filepath.Join(t.TempDir(), "none.json")}, errcode.Usage},
		{"unknown backend", []string{"run", "--backend", "kvm", hello}, errcode.BackendUnknown},
		{"unknown profile", []string{"run", "--profile", "prod", hello}, errcode.ProfileUnknown},
		{"missing bundle", []string{"run", filepath.Join(t.TempDir(), "nope")}, errcode.BundleNotFound},
		{"two bundles", []string{"run", hello, hello}, errcode.Usage},
		{"no bundle", []string{"run"}, errcode.Usage},
		{"unknown flag", []string{"run", "--frobnicate", hello}, errcode.Usage},
		{"bad --env", []string{"run", "--env", "NOEQUALS", hello}, errcode.Usage},
		{"bad --dir", []string{"run", "--dir", "/tmp:/tmp", hello}, errcode.DirInvalid},
		{"unknown command", []string{"frobnicate"}, errcode.Usage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := launch(t, tc.args...)
			if r.code != tc.code.Class().ExitStatus() || !strings.Contains(r.stderr, tc.code.String()) {
				t.Errorf("got %+v, want %v", r, tc.code)
			}
		})
	}
}

func TestBadInputNeverPanics(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hello := testwasm.Example(t, "hello")
	module, _ := os.ReadFile(filepath.Join(hello, "module.wasm"))
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	manifest := []byte("name = \"x\"\nprofiles = [\"debug\"]\n")
	tw.WriteHeader(&tar.Header{Name: "ampoule.toml", Mode: 0o644, Size: int64(len(manifest)), Typeflag: tar.TypeReg})
	tw.Write(manifest)
	tw.WriteHeader(&tar.Header{Name: "module.wasm", Mode: 0o644, Size: int64(len(module)), Typeflag: tar.TypeReg})
	tw.Write(module)
	tw.Close()
	good := write("good.tar", tarBuf.Bytes())
	if r := launch(t, "run", cacheFlag(t), good); r.code != 0 || !strings.Contains(r.stdout, "Hello, world") {
		t.Fatalf("a good tar bundle failed: %+v", r)
	}
	for _, tc := range []struct {
		name string
		path string
		code errcode.Code
	}{
		{"truncated tar", write("trunc.tar", tarBuf.Bytes()[:2000]), errcode.BundleMalformed},
		{"text file", write("notes.txt", []byte("hello\n")), errcode.BundleMalformed},
		{"elf as wasm", write("tool.wasm", []byte("\x7fELF\x02\x01\x01")), errcode.ModuleNotWasm},
		{"truncated module", write("half.wasm", module[:len(module)/2]), errcode.ModuleInvalid},
		{"empty module", write("empty.wasm", nil), errcode.ModuleNotWasm},
		{"unknown import", write("imp.wasm", testwasm.Assemble(testwasm.Spec{Imports: []testwasm.Import{{Module: "env", Name: "system"}}})), errcode.ModuleImportDenied},
		{"manifest without module", copyBundleNoModule(t, "name = \"x\"\nprofiles = [\"debug\"]\n"), errcode.ModuleMissing},
		{"dir without manifest", t.TempDir(), errcode.ManifestMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := launch(t, "run", "--no-cache", tc.path)
			if r.code != tc.code.Class().ExitStatus() || !strings.Contains(r.stderr, tc.code.String()) || !strings.Contains(r.stderr, "launch: hint: ") {
				t.Errorf("got %+v, want %v with a hint", r, tc.code)
			}
		})
	}
}

func TestMeasure(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	a := launch(t, "measure", hello)
	b := launch(t, "measure", "--profile", "debug", hello)
	if a.code != 0 || a.stdout != b.stdout || !regexp.MustCompile(`^[0-9a-f]{96}\n$`).MatchString(a.stdout) {
		t.Fatalf("measure: %+v / %+v", a, b)
	}
	p := launch(t, "measure", "--profile", "production", hello)
	if p.stdout == a.stdout {
		t.Error("the profile does not enter the measurement")
	}
	j := launch(t, "measure", "--json", "--profile", "production", hello)
	var out struct {
		Measurement       string          `json:"measurement"`
		Profile           string          `json:"profile"`
		CanonicalManifest json.RawMessage `json:"canonical_manifest"`
	}
	if err := json.Unmarshal([]byte(j.stdout), &out); err != nil || out.Measurement+"\n" != p.stdout || out.Profile != "production" {
		t.Errorf("measure --json = %s (%v)", j.stdout, err)
	}
	// Comments and layout do not change the measurement; a value does.
	src, _ := os.ReadFile(filepath.Join(hello, "ampoule.toml"))
	edited := copyBundle(t, hello, "# a new comment\n\n"+strings.ReplaceAll(string(src), " = ", "="))
	if launch(t, "measure", edited).stdout != a.stdout {
		t.Error("a comment/whitespace edit changed the measurement")
	}
	changed := copyBundle(t, hello, strings.Replace(string(src), `wall_time = "10s"`, `wall_time = "11s"`, 1))
	if launch(t, "measure", changed).stdout == a.stdout {
		t.Error("changing wall_time did not change the measurement")
	}
}

func TestHelpEverywhere(t *testing.T) {
	r := launch(t, "help")
	if r.code != 0 {
		t.Fatalf("help: %+v", r)
	}
	for _, c := range program().Commands {
		if !strings.Contains(r.stdout, "launch "+c.Name) {
			t.Errorf("help does not list %s", c.Name)
		}
		h := launch(t, c.Name, "--help")
		if h.code != 0 || !strings.Contains(h.stdout, "Usage: launch "+c.Name) || !strings.Contains(h.stdout, "Example") {
			t.Errorf("%s --help: %+v", c.Name, h)
		}
	}
	if r := launch(t); r.code != errcode.ClassUsage.ExitStatus() || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no arguments: %+v", r)
	}
}

func TestTraceCalls(t *testing.T) {
	r := launch(t, "run", cacheFlag(t), "--trace-calls", testwasm.Example(t, "hello"))
	if r.code != 0 || !strings.Contains(r.stderr, "launch: call fd_write(fd=1, ") || !strings.Contains(r.stdout, "Hello, tenant") {
		t.Errorf("%+v", r)
	}
}

// TestAudit counts a confined run's system calls with eBPF and checks that
// every call it made is in the seccomp allowlist: the audit and the filter
// agree. It needs root; CI runs as root.
func TestAudit(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the eBPF audit needs root (CAP_BPF, CAP_PERFMON); CI runs as root")
	}
	files := testwasm.Example(t, "files")
	report := filepath.Join(t.TempDir(), "audit.json")
	r := launch(t, "run", cacheFlag(t), "--confine", "--audit", "--audit-json", report, "--dir", t.TempDir()+"::/out::rw", files)
	if r.code != 0 || !strings.Contains(r.stderr, "launch: audit:") || !strings.Contains(r.stderr, "openat2") {
		t.Fatalf("%+v", r)
	}
	s := launch(t, "audit", "--suggest", report)
	if s.code != 0 || !strings.Contains(s.stdout, "unix.SYS_OPENAT2") {
		t.Fatalf("audit --suggest: %+v", s)
	}
	if strings.Contains(s.stdout, "NEW:") {
		t.Errorf("a confined run made calls outside the allowlist:\n%s", s.stdout)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{\"nope\": 1}"), 0o644)
	if b := launch(t, "audit", "--suggest", bad); b.code != errcode.ClassUsage.ExitStatus() {
		t.Errorf("a file that is not a report: %+v", b)
	}
}

func TestGateCommand(t *testing.T) {
	r := launch(t, "gate", "--profile", "production")
	for _, want := range []string{"46 functions", "proc_raise               trap", "sock_accept              deny(57)", "path_open                allow"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("gate lacks %q:\n%s", want, r.stdout)
		}
	}
	var rows []struct{ Function, Rule, Why string }
	if err := json.Unmarshal([]byte(launch(t, "gate", "--json").stdout), &rows); err != nil || len(rows) != 46+4 {
		t.Errorf("gate --json: %v, %d rows", err, len(rows))
	}
}

func TestProfilesAndErrorsCommands(t *testing.T) {
	r := launch(t, "profiles")
	for _, want := range []string{"debug", "staging", "production", "no relaxations", "warning plain-logs"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("profiles lacks %q", want)
		}
	}
	var ps []map[string]any
	if err := json.Unmarshal([]byte(launch(t, "profiles", "--json").stdout), &ps); err != nil || len(ps) != 3 {
		t.Errorf("profiles --json: %v %d", err, len(ps))
	}
	r = launch(t, "errors")
	for _, c := range errcode.All() {
		if !strings.Contains(r.stdout, c.Name()) {
			t.Errorf("errors lacks %v", c)
		}
	}
	var es []struct {
		Code       string `json:"code"`
		ExitStatus int    `json:"exit_status"`
	}
	if err := json.Unmarshal([]byte(launch(t, "errors", "--json").stdout), &es); err != nil || len(es) != len(errcode.All()) {
		t.Errorf("errors --json: %v", err)
	}
	if v := launch(t, "version"); v.code != 0 || !strings.Contains(v.stdout, "wazero v") {
		t.Errorf("version: %+v", v)
	}
}

// TestSignalsStopTheProcess sends SIGINT and SIGTERM to a real launch process
// whose workload spins, sleeps or blocks on stdin, and checks it exits 130
// promptly.
func TestSignalsStopTheProcess(t *testing.T) {
	bin := testwasm.Launch(t)
	crash := testwasm.Example(t, "crash")
	cache := t.TempDir()
	for _, mode := range []string{"spin", "sleep", "stdin"} {
		for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
			t.Run(mode+"/"+sig.String(), func(t *testing.T) {
				cmd := exec.Command(bin, "run", "--cache-dir", cache, crash, "--", mode)
				stdinR, stdinW, _ := os.Pipe() // idle stdin
				defer stdinW.Close()
				cmd.Stdin = stdinR
				var stderr testwasm.SyncBuffer
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				stdinR.Close()
				deadline := time.Now().Add(30 * time.Second)
				for !strings.Contains(stderr.String(), "mode "+mode) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				time.Sleep(50 * time.Millisecond)
				cmd.Process.Signal(sig)
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					cmd.Process.Kill()
					t.Fatal("launch did not exit after the signal")
				}
				if got := cmd.ProcessState.ExitCode(); got != 130 {
					t.Errorf("exit = %d, want 130; stderr:\n%s", got, stderr.String())
				}
				if !strings.Contains(stderr.String(), "E2003 interrupted") {
					t.Errorf("stderr lacks E2003: %s", stderr.String())
				}
			})
		}
	}
}

// copyBundle makes a bundle in a temp dir with src's module and the given manifest.
func copyBundle(t *testing.T, src, manifest string) string {
	t.Helper()
	return testwasm.CopyBundle(t, src, manifest)
}

func copyBundleNoModule(t *testing.T, manifest string) string {
	dir := t.TempDir()
	writeManifest(t, dir, manifest)
	return dir
}

func writeManifest(t *testing.T, dir, manifest string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "ampoule.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWallTimeEndsASpinningProcess runs a workload that never makes a host
// call past its wall-time limit in a real launch process: the process must
// exit with the limit's class, even though the guest cannot be preempted.
func TestWallTimeEndsASpinningProcess(t *testing.T) {
	bin := testwasm.Launch(t)
	crash := testwasm.Example(t, "crash")
	bundle := copyBundle(t, crash, "name = \"crash\"\nargs = [\"spin\"]\nprofiles = [\"debug\", \"staging\"]\n[limits]\nwall_time = \"300ms\"\n")
	for _, profile := range []string{"debug", "staging"} {
		cmd := exec.Command(bin, "run", "--profile", profile, bundle)
		var stderr testwasm.SyncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("%s: launch did not end a spinning workload at its wall-time limit", profile)
		}
		if got := cmd.ProcessState.ExitCode(); got != errcode.ClassLimit.ExitStatus() || !strings.Contains(stderr.String(), "E4002 wall-time-limit") {
			t.Errorf("%s: exit %d, stderr %q", profile, got, stderr.String())
		}
	}
}

// TestErrorsMarkdown: 'launch errors --markdown', which 'make docs' writes to
// docs/errors.md, prints errcode.Markdown's rendering byte for byte (errcode's
// TestMarkdownIsTheDoc keeps the file equal to that).
func TestErrorsMarkdown(t *testing.T) {
	var want bytes.Buffer
	if err := errcode.Markdown(&want); err != nil {
		t.Fatal(err)
	}
	r := launch(t, "errors", "--markdown")
	if r.code != 0 || r.stdout != want.String() || r.stderr != "" {
		t.Errorf("errors --markdown: exit %d, stderr %q, stdout equal to errcode.Markdown: %v", r.code, r.stderr, r.stdout == want.String())
	}
}

// TestThreatModelNamesRealTests: every test docs/threat-model.md cites
// exists, so the table cannot point at evidence that is gone.
func TestThreatModelNamesRealTests(t *testing.T) {
	root := testwasm.Root(t)
	doc, err := os.ReadFile(filepath.Join(root, "docs", "threat-model.md"))
	if err != nil {
		t.Fatal(err)
	}
	defined := map[string]bool{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, _ := os.ReadFile(p)
		for _, m := range regexp.MustCompile(`(?m)^func ((?:Test|Fuzz)\w+)\(`).FindAllSubmatch(src, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	cited := regexp.MustCompile(`\b(?:Test|Fuzz)[A-Z]\w+`).FindAllString(string(doc), -1)
	if len(cited) < 20 {
		t.Fatalf("only %d tests cited", len(cited))
	}
	for _, name := range cited {
		if !defined[name] {
			t.Errorf("docs/threat-model.md cites %s, which no test file defines", name)
		}
	}
}
