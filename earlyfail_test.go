package ampoule

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestFailJSON: a failure before the run has its lines is one JSON record
// with its code, name and hint, and the exit status is its class's.
func TestFailJSON(t *testing.T) {
	var b strings.Builder
	status := FailJSON(&b, errcode.Errorf(errcode.Usage, "run takes one BUNDLE, got 0 arguments").WithHint("usage: launch run BUNDLE"))
	if status != errcode.ClassUsage.ExitStatus() {
		t.Errorf("exit status %d, want %d", status, errcode.ClassUsage.ExitStatus())
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Fatalf("not one line: %q", b.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(b.String()), &rec); err != nil {
		t.Fatalf("not a JSON record: %v: %q", err, b.String())
	}
	want := map[string]any{"@level": "error", "@message": "run takes one BUNDLE, got 0 arguments", "code": "E1001", "name": "usage", "hint": "usage: launch run BUNDLE"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("%s = %v, want %v (record %q)", k, rec[k], v, b.String())
		}
	}
}

// TestHostLinesProgress: a run's progress line is shown on a terminal
// stderr, and not where the run is quiet, where the log may go to stderr,
// or where stderr is no terminal.
func TestHostLinesProgress(t *testing.T) {
	tty := openTerminal(t)
	if NewHostLines(os.Stdout, tty, false).Progress(false, time.Second) == nil {
		t.Error("no progress on a terminal")
	}
	if NewHostLines(os.Stdout, tty, false).Progress(true, 0) != nil {
		t.Error("progress under --quiet")
	}
	if NewHostLines(os.Stdout, tty, true).Progress(false, 0) != nil {
		t.Error("progress on the stream the log may take")
	}
	var b strings.Builder
	if NewHostLines(os.Stdout, &b, false).Progress(false, 0) != nil {
		t.Error("progress on a stream that is not a terminal")
	}
}

// openTerminal returns the terminal end of a fresh pseudo-terminal.
func openTerminal(t *testing.T) *os.File {
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
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return slave
}
