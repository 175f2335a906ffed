package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// served is a real 'launch serve' process.
type served struct {
	cmd    *exec.Cmd
	addr   string
	stderr *testwasm.SyncBuffer
	done   chan struct{}
	// tmp is the server's TMPDIR.
	tmp string
}

// startServe starts 'launch serve' on a fresh socket, with the given
// flags, and waits until it answers; the test's end drains it.
func startServe(t *testing.T, bin string, flags ...string) *served {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "unix:" + sock}, flags...)...)
	// Written by the command's copying goroutine while tests read it.
	var stderr testwasm.SyncBuffer
	cmd.Stderr = &stderr
	tmp := t.TempDir()
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir(), "TMPDIR="+tmp)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &served{cmd: cmd, addr: "unix:" + sock, stderr: &stderr, done: make(chan struct{}), tmp: tmp}
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("launch serve never answered: %v\n%s", err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("launch serve did not drain")
		}
	})
	return s
}

// runCLI runs a launch process and returns its result.
func runCLI(t *testing.T, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan struct{})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("launch %v hung", args)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// What a decrypted log holds that differs from run to run: times, refs,
// the evidence, its nonce and key, and how many records the workload's
// output was cut into (as its writes reached the log).
var logVarying = []*regexp.Regexp{
	regexp.MustCompile(`(?m)^\S+Z `),
	regexp.MustCompile(`ref[= ][0-9a-f]{16}`),
	regexp.MustCompile(`envelope=\{.*\}`),
	regexp.MustCompile(`issued \S+`),
	regexp.MustCompile(`nonce [0-9a-f]+`),
	regexp.MustCompile(`runtime key sha256:[0-9a-f]+`),
	regexp.MustCompile(`\d+ records`),
}

func normalLog(s string) string {
	for _, re := range logVarying {
		s = re.ReplaceAllString(s, "X")
	}
	return s
}

// Under staging a run through the server writes the client's --log-out,
// which decrypts to what launch run's log decrypts to, record for record
// (times, refs and evidence apart), and the host sees the same lines.
func TestServeLogMatchesRun(t *testing.T) {
	bin := testwasm.Launch(t)
	s := startServe(t, bin)
	dir := t.TempDir()
	key := filepath.Join(dir, "tenant.key")
	r := runCLI(t, bin, "keygen", "-o", key)
	if r.code != 0 {
		t.Fatal(r)
	}
	bundle := testwasm.CopyBundle(t, testwasm.Example(t, "hello"), "log_recipient = \""+strings.TrimSpace(r.stdout)+"\"\n"+
		"name = \"hello\"\nargs = [\"tenant\"]\nprofiles = [\"staging\"]\n[env]\nGREETING = \"Hello\"\n")
	decrypt := func(log string) result {
		r := runCLI(t, bin, "logs", "decrypt", "--identity", key, log)
		if r.code != 0 {
			t.Fatalf("decrypt %s: %+v", log, r)
		}
		return r
	}
	direct := filepath.Join(dir, "direct.log")
	want := runCLI(t, bin, "run", "--profile", "staging", "--log-out", direct, bundle)
	wantLog := decrypt(direct)
	for i := range 3 {
		log := filepath.Join(dir, "served"+string(rune('a'+i))+".log")
		got := runCLI(t, bin, "run", "--server", s.addr, "--profile", "staging", "--log-out", log, bundle)
		if got != want {
			t.Errorf("run %d: %+v, want %+v", i, got, want)
		}
		gotLog := decrypt(log)
		if gotLog.stdout != wantLog.stdout || normalLog(gotLog.stderr) != normalLog(wantLog.stderr) {
			t.Errorf("run %d: log\n%s\n%s\nwant\n%s\n%s", i, gotLog.stdout, normalLog(gotLog.stderr), wantLog.stdout, normalLog(wantLog.stderr))
		}
	}
	if !strings.Contains(wantLog.stdout, "Hello, tenant, from inside wazero!") {
		t.Errorf("the log: %q", wantLog.stdout)
	}
}

// The hostile corpus through the server ends as it does through launch
// run (TestHostileCorpus): the same exit status and code, twice, the
// second on a warm runner where the bundle takes one; the server serves
// on, and leaves no runner behind when it drains.
func TestHostileCorpusServer(t *testing.T) {
	bin := testwasm.Launch(t)
	s := startServe(t, bin, "--max-runs", "2")
	for _, tc := range testwasm.HostileCorpus(t) {
		t.Run(tc.Name, func(t *testing.T) {
			bundle := hostileBundle(t, tc)
			for _, profile := range []string{"debug", "staging"} {
				want := tc.Expect.Class().ExitStatus()
				if tc.Expect == 0 {
					want = 0
				}
				if profile == "debug" && tc.DebugExit >= 0 {
					want = tc.DebugExit
				}
				for i := range 2 {
					r := runCLI(t, bin, "run", "--server", s.addr, "--profile", profile, bundle)
					if r.code != want {
						t.Errorf("%s #%d: exit %d, want %d\n%s", profile, i, r.code, want, r.stderr)
					}
					if tc.Expect != 0 && !(profile == "debug" && tc.DebugExit >= 0) && !strings.Contains(r.stderr, tc.Expect.String()) {
						t.Errorf("%s #%d: stderr lacks %v:\n%s", profile, i, tc.Expect, r.stderr)
					}
					if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, errcode.ServerProtocol.String()) {
						t.Errorf("%s #%d: %s", profile, i, r.stderr)
					}
				}
			}
		})
	}
	r := runCLI(t, bin, "run", "--server", s.addr, testwasm.Example(t, "hello"))
	if r.code != 0 || !strings.Contains(r.stdout, "Hello, tenant") {
		t.Errorf("hello after the corpus: %+v", r)
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
	if c := s.cmd.ProcessState.ExitCode(); c != 0 {
		t.Errorf("the drained server exited %d:\n%s", c, s.stderr.String())
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(runnersLeft()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := runnersLeft(); len(left) > 0 {
		t.Errorf("runner processes left behind: %v", left)
	}
}

// SIGTERM drains a real server: the run going ends as it would have, a
// new client finds no server (E1070), and the server exits 0 leaving no
// runner.
func TestServeDrainsOnSIGTERM(t *testing.T) {
	bin := testwasm.Launch(t)
	s := startServe(t, bin)
	crash := testwasm.Example(t, "crash")
	// Warm the bundle first, so an idle runner waits when the drain comes.
	if r := runCLI(t, bin, "run", "--server", s.addr, crash, "--", "nap", "1500"); r.code != 0 {
		t.Fatal(r)
	}
	got := make(chan result, 1)
	go func() { got <- runCLI(t, bin, "run", "--server", s.addr, crash, "--", "nap", "1500") }()
	time.Sleep(700 * time.Millisecond)
	s.cmd.Process.Signal(syscall.SIGTERM)
	// It stops accepting at once, whatever the run going.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("unix", strings.TrimPrefix(s.addr, "unix:"))
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts after SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := runCLI(t, bin, "run", "--server", s.addr, crash, "--", "nap", "1"); r.code != 2 || !strings.Contains(r.stderr, errcode.ServerUnavailable.String()) {
		t.Errorf("a client after SIGTERM: %+v", r)
	}
	r := <-got
	if r.code != 0 || !strings.Contains(r.stdout, "napped") {
		t.Errorf("the run going at SIGTERM: %+v", r)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not exit after draining")
	}
	if c := s.cmd.ProcessState.ExitCode(); c != 0 || !strings.Contains(s.stderr.String(), "stopped serving") {
		t.Errorf("the drained server: exit %d\n%s", c, s.stderr.String())
	}
	deadline = time.Now().Add(3 * time.Second)
	for len(runnersLeft()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := runnersLeft(); len(left) > 0 {
		t.Errorf("runner processes left behind: %v", left)
	}
}

// TestLeak's canary through the server: under staging it reaches none of
// what the host sees of the client (its stdout, stderr and exit status,
// the log's bytes) nor the server's own stderr or temporary files, on a
// cold and then a warm runner, and the tenant's identity recovers it from
// the log.
func TestLeakServer(t *testing.T) {
	bin := testwasm.Launch(t)
	s := startServe(t, bin)
	key, recipient := tenant(t)
	for _, tc := range []struct {
		mode string
		code errcode.Code
	}{
		{"stdout", 0},
		{"stderr", 0},
		{"panic", errcode.WorkloadExit},
		{"trap", errcode.WorkloadTrap},
		{"path", 0},
		{"flood", errcode.OutputLimit},
		{"all", errcode.WorkloadExit},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			bundle := leakBundle(t, recipient, tc.mode)
			for i := range 2 {
				logFile := filepath.Join(t.TempDir(), "run.log")
				r := runCLI(t, bin, "run", "--server", s.addr, "--profile", "staging", "--log-out", logFile, bundle)
				logBytes, err := os.ReadFile(logFile)
				if err != nil {
					t.Fatal(err)
				}
				for what, b := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "log": string(logBytes), "server's stderr": s.stderr.String()} {
					if leaked([]byte(b)) {
						t.Errorf("#%d: the canary reached the host's %s", i, what)
					}
				}
				want := 0
				if tc.code != 0 {
					want = tc.code.Class().ExitStatus()
				}
				if r.code != want {
					t.Errorf("#%d: exit status %d, want %d", i, r.code, want)
				}
				if lines := hostVisible(r.stderr); tc.code != 0 && (len(lines) != 1 || !strings.HasPrefix(lines[0], "launch: "+tc.code.String()+" (ref ")) {
					t.Errorf("#%d: stderr = %q, want one static line with %v", i, r.stderr, tc.code)
				}
				d := runCLI(t, bin, "logs", "decrypt", "--identity", key, logFile)
				if d.code != 0 || !strings.Contains(d.stdout+d.stderr, canary) {
					t.Errorf("#%d: the tenant's log lacks the canary: %+v", i, d)
				}
			}
			if entries, _ := os.ReadDir(s.tmp); len(entries) != 0 {
				t.Errorf("the server left temporary files: %v", entries)
			}
		})
	}
}
