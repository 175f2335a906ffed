package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
)

// openPTY opens a real pseudo-terminal pair: its master, read by the
// test, and its slave, a terminal to hand a process as a stream.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("the pty's number: %v", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// onTerminal runs launch with its stderr on a fresh terminal and returns
// its exit status, its stdout and what reached the terminal.
func onTerminal(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	master, slave := openPTY(t)
	var stdout bytes.Buffer
	cmd := exec.Command(testwasm.Launch(t), args...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
	cmd.Stdout, cmd.Stderr = &stdout, slave
	read := make(chan []byte)
	go func() {
		// Ends in EIO once no process holds the slave open.
		b, _ := io.ReadAll(master)
		read <- b
	}()
	err := cmd.Run()
	slave.Close()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), string(<-read)
}

// TestLogNeverGoesToATerminal: under staging a run whose log would go to
// stderr, and stderr is a terminal (a real pty), is refused with
// log-to-terminal before anything runs, the refusal and its hint on the
// terminal (the host's own mistake, shown whole) and no ciphertext there; with --log-out FILE it runs, and a run with no
// log at all runs on a terminal as before.
func TestLogNeverGoesToATerminal(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	hello := testwasm.Example(t, "hello")
	manifest, err := os.ReadFile(filepath.Join(hello, "ampoule.toml"))
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, hello, "log_recipient = \""+id.Recipient().String()+"\"\n"+string(manifest))

	code, stdout, tty := onTerminal(t, "run", "--profile", "staging", bundle)
	refusal := regexp.MustCompile(`(?m)^launch: error: E1029 log-to-terminal: .*\r?\nlaunch: hint: pass --log-out FILE`)
	if code != 2 || !refusal.MatchString(tty) || strings.Contains(tty, logging.Magic) || stdout != "" {
		t.Errorf("a log to a terminal: exit %d, stdout %q, terminal %q", code, stdout, tty)
	}

	logFile := filepath.Join(t.TempDir(), "run.log")
	code, stdout, tty = onTerminal(t, "run", "--profile", "staging", "--log-out", logFile, bundle)
	if code != 0 || strings.Contains(tty, "E1029") || !strings.Contains(tty, "backend sim is a software simulator") || stdout != "" {
		t.Errorf("the log to a file, stderr a terminal: exit %d, stdout %q, terminal %q", code, stdout, tty)
	}
	if data, err := os.ReadFile(logFile); err != nil || !bytes.HasPrefix(data, []byte(logging.Magic)) {
		t.Errorf("the log file: %v", err)
	}

	code, _, tty = onTerminal(t, "run", "--profile", "staging", hello)
	if code != 0 || !strings.Contains(tty, "output is withheld") {
		t.Errorf("a run without a log on a terminal: exit %d, terminal %q", code, tty)
	}
}
