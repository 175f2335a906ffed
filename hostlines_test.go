package ampoule

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestHostLinesFollowTheLog: where the log may go to stderr, the run's
// lines are held until it is known: to stdout, those held first, once the
// log opens there; to stderr once the run starts without a log there; and
// to stderr at once where the log cannot go there.
func TestHostLinesFollowTheLog(t *testing.T) {
	var stdout, stderr bytes.Buffer
	h := NewHostLines(&stdout, &stderr, true)
	h.Write([]byte("one\n"))
	if stdout.Len()+stderr.Len() != 0 {
		t.Fatalf("undecided lines were written: %q %q", stdout.String(), stderr.String())
	}
	w, err := h.Sink("-", false)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("LOG"))
	h.Write([]byte("two\n"))
	h.Settle()
	h.Write([]byte("three\n"))
	if stdout.String() != "one\ntwo\nthree\n" || stderr.String() != "LOG" {
		t.Errorf("with the log on stderr: stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	h = NewHostLines(&stdout, &stderr, true)
	h.Write([]byte("one\n"))
	h.Settle()
	h.Write([]byte("two\n"))
	if stdout.String() != "" || stderr.String() != "one\ntwo\n" {
		t.Errorf("with no log on stderr: stdout %q, stderr %q", stdout.String(), stderr.String())
	}

	stdout.Reset()
	stderr.Reset()
	h = NewHostLines(&stdout, &stderr, false)
	h.Write([]byte("one\n"))
	if stdout.String() != "" || stderr.String() != "one\n" {
		t.Errorf("where the log cannot go to stderr: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

// TestLogFileIsNew: the log's file is made mode 0600; an existing regular
// file is refused and left as it was, or with force emptied and written;
// an existing FIFO is written as it is.
func TestLogFileIsNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.log")
	f, err := openLogFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("first run")
	f.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the new log's mode: %v %v", fi.Mode(), err)
	}
	h := NewHostLines(&bytes.Buffer{}, &bytes.Buffer{}, false)
	_, err = h.Sink(path, false)
	if errcode.From(err).Code != errcode.OutputExists {
		t.Errorf("an existing log: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "first run" {
		t.Errorf("the refusal changed the old log: %q", got)
	}
	if f, err = openLogFile(path, true); err != nil {
		t.Fatal(err)
	}
	f.WriteString("second")
	f.Close()
	if got, _ := os.ReadFile(path); string(got) != "second" {
		t.Errorf("--force: %q", got)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := openLogFile(fifo, false)
	if err != nil {
		t.Fatalf("an existing FIFO: %v", err)
	}
	w.WriteString("through")
	w.Close()
	buf := make([]byte, 16)
	if n, _ := r.Read(buf); string(buf[:n]) != "through" {
		t.Errorf("the FIFO read %q", buf[:n])
	}
}
