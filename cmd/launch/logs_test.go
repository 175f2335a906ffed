package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
)

const canary = "CANARY-d1c3"

// tenant makes an identity file and returns its path and recipient.
func tenant(t *testing.T) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenant.key")
	r := launch(t, "keygen", "-o", path)
	if r.code != 0 || !strings.HasPrefix(r.stdout, logging.RecipientPrefix) {
		t.Fatalf("keygen: %+v", r)
	}
	return path, strings.TrimSpace(r.stdout)
}

func TestKeygen(t *testing.T) {
	path, recipient := tenant(t)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("identity file: %v, mode %v", err, st.Mode())
	}
	data, _ := os.ReadFile(path)
	id, err := logging.ParseIdentity(data)
	if err != nil || id.Recipient().String() != recipient {
		t.Errorf("the file's identity does not match the printed recipient: %v", err)
	}
	if r := launch(t, "keygen", "-o", path); r.code != errcode.ClassUsage.ExitStatus() {
		t.Errorf("keygen overwrote a key: %+v", r)
	}
	if r := launch(t, "keygen"); r.code != 0 || !strings.Contains(r.stdout, logging.IdentityPrefix) {
		t.Errorf("keygen to stdout: %+v", r)
	}
}

// leakBundle is the leak example with the tenant's recipient and the mode.
func leakBundle(t *testing.T, recipient, mode string) string {
	t.Helper()
	src := testwasm.Example(t, "leak")
	return copyBundle(t, src, "name = \"leak\"\nargs = [\""+mode+"\", \""+canary+"-arg\"]\nprofiles = [\"debug\", \"staging\"]\nlog_recipient = \""+recipient+"\"\n"+
		"[env]\nSECRET = \""+canary+"\"\n[limits]\nmemory = \"64MiB\"\nwall_time = \"10s\"\noutput = \"256KiB\"\n")
}

// TestLeak pushes a canary out of a workload every way it can. Under staging
// it must appear nowhere the host can see (launch's stdout and stderr, its
// exit status, the log's bytes, temporary files), and the tenant's identity
// must recover it from the log. Under debug it is plainly visible: the test
// proves the channel works both ways.
func TestLeak(t *testing.T) {
	bin := testwasm.Launch(t)
	key, recipient := tenant(t)
	for _, tc := range []struct {
		mode string
		code errcode.Code
	}{
		{"stdout", 0},
		{"stderr", 0},
		{"panic", errcode.WorkloadExit},
		{"trap", errcode.WorkloadTrap},
		{"exit", errcode.WorkloadExit},
		{"path", 0},
		{"flood", errcode.OutputLimit},
		{"all", errcode.WorkloadExit},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			bundle := leakBundle(t, recipient, tc.mode)
			tmp, cache := t.TempDir(), t.TempDir()
			logFile := filepath.Join(t.TempDir(), "run.log")
			cmd := exec.Command(bin, "run", "--profile", "staging", "--log-out", logFile, bundle)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "XDG_CACHE_HOME="+cache)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			status := cmd.ProcessState.ExitCode()
			logBytes, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			for what, b := range map[string][]byte{"stdout": stdout.Bytes(), "stderr": stderr.Bytes(), "log": logBytes} {
				if bytes.Contains(b, []byte(canary)) || bytes.Contains(b, []byte("d1c3")) {
					t.Errorf("the canary reached the host's %s", what)
				}
			}
			want := 0
			if tc.code != 0 {
				want = tc.code.Class().ExitStatus()
			}
			if status != want {
				t.Errorf("exit status %d, want %d", status, want)
			}
			if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
				t.Errorf("temporary files left: %v", entries)
			}
			if entries, _ := os.ReadDir(cache); len(entries) != 0 {
				t.Errorf("the cache directory was written: %v", entries)
			}
			lines := hostVisible(stderr.String())
			if tc.code != 0 && (len(lines) != 1 || !strings.HasPrefix(lines[0], "launch: "+tc.code.String()+" (ref ")) {
				t.Errorf("stderr = %q, want one static line with %v", stderr.String(), tc.code)
			}

			// The tenant reads it all back.
			var dout, derr bytes.Buffer
			code := run(t.Context(), []string{"logs", "decrypt", "--identity", key, logFile}, strings.NewReader(""), &dout, &derr)
			if code != 0 {
				t.Fatalf("decrypt: %d %s", code, derr.String())
			}
			all := dout.String() + derr.String()
			if tc.mode != "exit" && !strings.Contains(all, canary) {
				t.Errorf("the tenant's log lacks the canary:\n%s", all)
			}
			if !strings.Contains(all, canary+"-arg") {
				t.Error("the tenant's log lacks the argument echo")
			}
			if tc.code != 0 && !strings.Contains(all, tc.code.String()) {
				t.Errorf("the tenant's log lacks the error's detail (%v):\n%s", tc.code, derr.String())
			}
			ref := strings.TrimSuffix(strings.SplitAfter(strings.Join(lines, ""), "(ref ")[len(strings.SplitAfter(strings.Join(lines, ""), "(ref "))-1], ")")
			if tc.code != 0 && !strings.Contains(derr.String(), "ref "+ref) {
				t.Errorf("the log is not under the reference the host saw (%s)", ref)
			}

			// Under debug the same workload shows everything.
			d := exec.Command(bin, "run", "--profile", "debug", "--no-cache", bundle)
			var dbgOut, dbgErr bytes.Buffer
			d.Stdout, d.Stderr = &dbgOut, &dbgErr
			d.Run()
			if tc.mode != "exit" && !strings.Contains(dbgOut.String()+dbgErr.String(), canary) {
				t.Error("under debug the canary is not visible")
			}
		})
	}
}

func TestLogsDecryptRefusesTampering(t *testing.T) {
	key, recipient := tenant(t)
	logFile := filepath.Join(t.TempDir(), "run.log")
	if r := launch(t, "run", "--profile", "staging", "--log-out", logFile, leakBundle(t, recipient, "stdout")); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	good, _ := os.ReadFile(logFile)
	ls := strings.SplitAfter(string(good), "\n")
	ls = ls[:len(ls)-1]
	otherKey, _ := tenant(t)
	write := func(s string) string {
		p := filepath.Join(t.TempDir(), "x.log")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	for _, tc := range []struct {
		name, file, key string
		code            errcode.Code
	}{
		{"whole", logFile, key, 0},
		{"dropped record", write(ls[0] + strings.Join(ls[2:], "")), key, errcode.LogTampered},
		{"swapped records", write(ls[0] + ls[2] + ls[1] + strings.Join(ls[3:], "")), key, errcode.LogTampered},
		{"no end", write(strings.Join(ls[:len(ls)-1], "")), key, errcode.LogTruncated},
		{"wrong identity", logFile, otherKey, errcode.LogWrongIdentity},
		{"not a log", write("hello\n"), key, errcode.LogMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := launch(t, "logs", "decrypt", "--identity", tc.key, tc.file)
			if tc.code == 0 {
				if r.code != 0 || !strings.Contains(r.stderr, "launch: log verified") {
					t.Errorf("%+v", r)
				}
				return
			}
			if r.code != tc.code.Class().ExitStatus() || !strings.Contains(r.stderr, tc.code.String()) {
				t.Errorf("%+v, want %v", r, tc.code)
			}
		})
	}
	if r := launch(t, "logs", "decrypt", "--identity", filepath.Join(t.TempDir(), "none"), logFile); !strings.Contains(r.stderr, errcode.IdentityInvalid.String()) {
		t.Errorf("missing identity: %+v", r)
	}
}

// TestLogToSocketAndFollow sends a run's log to a Unix socket and decrypts a
// live log with --follow.
func TestLogToSocketAndFollow(t *testing.T) {
	key, recipient := tenant(t)
	sock := filepath.Join(t.TempDir(), "log.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		got <- b
	}()
	if r := launch(t, "run", "--profile", "staging", "--log-out", "unix:"+sock, leakBundle(t, recipient, "stdout")); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	logBytes := <-got
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"logs", "decrypt", "--identity", key, "-"}, bytes.NewReader(logBytes), &out, &errb); code != 0 || !strings.Contains(out.String(), canary) {
		t.Fatalf("decrypting the socket's log: %d %s %s", code, out.String(), errb.String())
	}

	// --follow: the log grows while it is read.
	live := filepath.Join(t.TempDir(), "live.log")
	half := len(logBytes) / 2
	os.WriteFile(live, logBytes[:half], 0o644)
	done := make(chan int, 1)
	var fout, ferr bytes.Buffer
	go func() {
		done <- run(t.Context(), []string{"logs", "decrypt", "--follow", "--identity", key, live}, strings.NewReader(""), &fout, &ferr)
	}()
	time.Sleep(300 * time.Millisecond)
	f, _ := os.OpenFile(live, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(logBytes[half:])
	f.Close()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(fout.String(), canary) {
			t.Errorf("--follow: %d %q %q", code, fout.String(), ferr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--follow did not finish once the end record arrived")
	}
}
