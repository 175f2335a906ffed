package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
)

// onPTY runs launch in-process with its stderr on a fresh terminal (a real
// pty), showing progress after after, and returns its exit status, its
// stdout and what reached the terminal.
func onPTY(t *testing.T, after time.Duration, args ...string) (int, string, string) {
	t.Helper()
	master, slave := openPTY(t)
	read := make(chan []byte)
	go func() {
		// Ends in EIO once nothing holds the slave open.
		b, _ := io.ReadAll(master)
		read <- b
	}()
	var stdout testwasm.SyncBuffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: slave, runner: runnerExe(t), progressAfter: after}
	code := env.run(context.Background(), args)
	slave.Close()
	return code, stdout.String(), string(<-read)
}

const progressLine = "launch: compiling module.wasm (2."

// TestCompileProgressOnATerminal: with stderr a terminal (a real pty), a
// compile longer than the delay shows "launch: compiling module.wasm (N
// MiB)…" and erases it before the workload's output; a compile that ends
// first shows nothing; nor does one under --quiet or --log-json. Under
// staging with the log in a file the terminal gets the line and the log
// none of it.
func TestCompileProgressOnATerminal(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	code, stdout, tty := onPTY(t, time.Nanosecond, "run", "--no-cache", hello)
	i := strings.Index(tty, progressLine)
	if code != 0 || i < 0 || !strings.Contains(tty[i:], " MiB)…\r\x1b[K") || !strings.HasPrefix(stdout, "Hello, tenant") {
		t.Errorf("a compile on a terminal: exit %d, stdout %q, terminal %q", code, stdout, tty)
	}
	tiny := filepath.Join(testwasm.Root(t), "testdata", "tiny")
	if _, _, tty := onPTY(t, time.Hour, "run", "--no-cache", tiny); strings.Contains(tty, "compiling") {
		t.Errorf("a compile shorter than the delay: terminal %q", tty)
	}
	for _, flag := range []string{"-q", "--quiet", "--log-json"} {
		if code, _, tty := onPTY(t, time.Nanosecond, "run", "--no-cache", flag, tiny); code != 0 || strings.Contains(tty, "compiling") {
			t.Errorf("%s: exit %d, terminal %q", flag, code, tty)
		}
	}

	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := os.ReadFile(filepath.Join(tiny, "ampoule.toml"))
	bundle := copyBundle(t, tiny, "log_recipient = \""+id.Recipient().String()+"\"\n"+string(manifest))
	logFile := filepath.Join(t.TempDir(), "run.log")
	code, _, tty = onPTY(t, time.Nanosecond, "run", "--profile", "staging", "--log-out", logFile, bundle)
	if code != 0 || !strings.Contains(tty, "launch: compiling module.wasm (153 bytes)…\r\x1b[K") {
		t.Errorf("staging, the log in a file: exit %d, terminal %q", code, tty)
	}
	data, err := os.ReadFile(logFile)
	if err != nil || !bytes.HasPrefix(data, []byte(logging.Magic)) || bytes.Contains(data, []byte("compiling")) {
		t.Errorf("the log file: %v, %q...", err, data[:min(len(data), 40)])
	}
}

// TestCompileProgressNeverOffATerminal: with stderr a pipe, or a file, no
// progress is shown, however long the compile: under debug nothing of it
// reaches stderr, and under staging with the log on stderr the log's
// stream holds the log alone.
func TestCompileProgressNeverOffATerminal(t *testing.T) {
	tiny := filepath.Join(testwasm.Root(t), "testdata", "tiny")
	var stdout, stderr testwasm.SyncBuffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, runner: runnerExe(t), progressAfter: time.Nanosecond}
	if code := env.run(context.Background(), []string{"run", "--no-cache", tiny}); code != 0 || strings.Contains(stderr.String(), "compiling") {
		t.Errorf("debug, stderr a buffer: exit %d, stderr %q", code, stderr.String())
	}

	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	manifest, _ := os.ReadFile(filepath.Join(tiny, "ampoule.toml"))
	bundle := copyBundle(t, tiny, "log_recipient = \""+id.Recipient().String()+"\"\n"+string(manifest))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	read := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); read <- b }()
	stdout = testwasm.SyncBuffer{}
	env = &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: w, runner: runnerExe(t), progressAfter: time.Nanosecond}
	code := env.run(context.Background(), []string{"run", "--profile", "staging", bundle})
	w.Close()
	logged := <-read
	if code != 0 || !bytes.HasPrefix(logged, []byte(logging.Magic)) || bytes.Contains(logged, []byte("compiling")) || strings.Contains(stdout.String(), "compiling") {
		t.Errorf("staging, the log on a piped stderr: exit %d, stdout %q, stderr %q...", code, stdout.String(), logged[:min(len(logged), 40)])
	}
}

// TestVerboseSaysHowTheCacheServed: -v says whether the compilation
// cache served the module: a first run into an empty cache is a miss, the
// next a hit, and a run with --no-cache compiles with it off.
func TestVerboseSaysHowTheCacheServed(t *testing.T) {
	tiny := filepath.Join(testwasm.Root(t), "testdata", "tiny")
	cache := "--cache-dir=" + t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-v", cache, tiny}, "cache=miss"},
		{[]string{"run", "-v", cache, tiny}, "cache=hit"},
		{[]string{"run", "-v", "--no-cache", tiny}, "cache=off"},
	} {
		r := launchSynced(t, tc.args...)
		if r.code != 0 || !strings.Contains(r.stderr, "launch: compiled: module=module.wasm bytes=153 ") || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: want %s: %+v", tc.args, tc.want, r)
		}
	}
	if r := launchSynced(t, "run", cache, tiny); strings.Contains(r.stderr, "cache=") {
		t.Errorf("without -v: %+v", r)
	}
}

// launchSynced is launch with streams that the runner's copying goroutines
// and the run's own logger may write at once.
func launchSynced(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr testwasm.SyncBuffer
	env := &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, runner: runnerExe(t)}
	code := env.run(context.Background(), args)
	return result{code, stdout.String(), stderr.String()}
}
