package sandbox

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// TestTraceShowsStrings: a trace shows a call's path and the bytes it
// writes or read as quoted strings, not pointers: escapes for what is not
// printable, a cut at TraceBytes with the length, a range outside the
// guest's memory named as such, and no more than traceIovecsMax iovecs read.
func TestTraceShowsStrings(t *testing.T) {
	var trace testwasm.SyncBuffer
	_, err := Run(context.Background(), Spec{
		Module: testwasm.Committed(t, filepath.Join("testdata", "trace-strings.wat")), Name: "t",
		MemoryPages: 16, WallTime: 10 * time.Second, Trace: &trace,
		Stdout: io.Discard, Stdin: strings.NewReader("typed\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`launch: call path_open(fd=3, dirflags=0, path="no\x1bsuch\tfile", oflags=0, fs_rights_base=0, fs_rights_inheriting=0, fdflags=0, result.opened_fd=500) = 8 (EBADF)` + "\n",
		`launch: call fd_write(fd=1, iovs="Hello, world\n", result.nwritten=504) = 0 (success)` + "\n",
		`launch: call fd_write(fd=1, iovs="A` + strings.Repeat("a", TraceBytes-1) + `"... (100 bytes), result.nwritten=504) = 0 (success)` + "\n",
		`launch: call path_open(fd=3, dirflags=0, path=<10 bytes at 4294967040, outside memory>, oflags=0, `,
		`launch: call fd_read(fd=0, iovs="typed\n", result.nread=508) = 0 (success)` + "\n",
		`launch: call fd_write(fd=1, iovs="" and 976 more iovecs, result.nwritten=504) = 0 (success)` + "\n",
	} {
		if !strings.Contains(trace.String(), want) {
			t.Errorf("the trace lacks %q:\n%s", want, trace.String())
		}
	}
	if strings.ContainsRune(trace.String(), 0x1b) {
		t.Error("the trace passes an escape byte through to the terminal")
	}
}
