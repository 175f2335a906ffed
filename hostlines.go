package ampoule

import (
	"io"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/errcode"
)

// HostLines is where a run's own lines for the host go: its fixed
// warnings and its final line. They go to stderr, except in a run whose
// encrypted log goes there (--log-out -, the default): that stream then
// carries the log's bytes and nothing else, and the lines go to stdout,
// which under a profile with a log carries nothing of the workload's.
// Whether a run has a log is known only once it opens one, so where the
// log may go to stderr the lines are held until the run either opens its
// log there (LogHere) or starts without one (Settle).
type HostLines struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
	to             io.Writer // nil while undecided
	held           []byte
	// logMayGoToStderr: stderr may carry the log, so no progress line.
	logMayGoToStderr bool
}

// NewHostLines returns the lines of a run whose log may go to stderr
// (held until it is known), or of one whose log cannot (stderr at once).
func NewHostLines(stdout, stderr io.Writer, logMayGoToStderr bool) *HostLines {
	h := &HostLines{stdout: stdout, stderr: stderr, logMayGoToStderr: logMayGoToStderr}
	if !logMayGoToStderr {
		h.to = stderr
	}
	return h
}

// Write writes p where the run's lines go, or holds it until that is known.
func (h *HostLines) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.to == nil {
		h.held = append(h.held, p...)
		return len(p), nil
	}
	return h.to.Write(p)
}

// LogHere says that the log goes to stderr: the lines go to stdout, those
// held first. It is a no-op once decided.
func (h *HostLines) LogHere() { h.decide(h.stdout) }

// Settle says that no log goes to stderr, if that was not decided yet:
// the lines go there, those held first.
func (h *HostLines) Settle() { h.decide(h.stderr) }

func (h *HostLines) decide(w io.Writer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.to != nil {
		return
	}
	h.to = w
	if len(h.held) > 0 {
		w.Write(h.held)
	}
	h.held = nil
}

// ToStderr reports whether a log sink's spec (launch's --log-out) names
// stderr: "-" or empty.
func ToStderr(spec string) bool { return spec == "" || spec == "-" }

// Sink opens where a run's log goes, as --log-out says: "-" (or empty)
// for stderr, "unix:PATH" for a Unix socket, anything else a file made
// for the log (mode 0600). An existing regular file is refused unless
// force, so that a run never destroys an earlier run's log; an existing
// FIFO or device (a pipe from process substitution, /dev/null) is written
// as it is. Stderr is refused when it is a terminal: the log is
// binary ciphertext, of no use there.
//
// Its errors are the host's own: the library shows them whole, with their
// hint, under every profile (errcode.Error.Host).
func (h *HostLines) Sink(spec string, force bool) (io.WriteCloser, error) {
	switch {
	case ToStderr(spec):
		if IsTerminal(h.stderr) {
			h.Settle()
			return nil, errcode.Errorf(errcode.LogToTerminal, "the encrypted log would go to stderr, which is a terminal").
				WithHint("pass --log-out FILE, or redirect stderr to a file or a pipe")
		}
		h.LogHere()
		return nopCloser{h.stderr}, nil
	case strings.HasPrefix(spec, "unix:"):
		conn, err := net.Dial("unix", strings.TrimPrefix(spec, "unix:"))
		if err != nil {
			return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
		}
		return conn, nil
	}
	return openLogFile(spec, force)
}

// openLogFile makes the log's file, or with force empties an existing
// one; an existing file that is not regular is written as it is.
func openLogFile(path string, force bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f, nil
	}
	if !os.IsExist(err) {
		return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
	}
	// Opened without truncating, so that a refusal changes nothing; a
	// FIFO blocks here until its reader comes, as it always has.
	if f, err = os.OpenFile(path, os.O_WRONLY, 0); err != nil {
		return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
	}
	if !fi.Mode().IsRegular() {
		return f, nil
	}
	if !force {
		f.Close()
		return nil, errcode.Errorf(errcode.OutputExists, "--log-out %s exists; a run writes its log to a new file", path).
			WithHint("choose a new file, remove the old log, or pass --force to replace it")
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
	}
	return f, nil
}

// IsTerminal reports whether w is a file descriptor open on a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// nopCloser is a writer the log does not close: stderr.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
