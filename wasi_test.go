package ampoule_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/tee"
)

// wasiGapChecks names what testdata/wasigaps/module.wat reports, a byte
// each, in its order, with the value WASI preview 1's conformance tests
// expect where plain wazero answers otherwise.
var wasiGapChecks = []struct {
	name string
	want byte
}{
	{"sock_shutdown on stdin", byte(shim.ENOTSOCK)},
	{"sock_shutdown on a closed fd", byte(shim.EBADF)},
	{"sock_recv on a closed fd", byte(shim.EBADF)},
	{"sock_send on stdout", byte(shim.ENOTSOCK)},
	{"sock_accept on a closed fd", byte(shim.EBADF)},
	{"fd_prestat_dir_name into 0 bytes", byte(shim.ENAMETOOLONG)},
	{"fd_prestat_dir_name into 64 bytes", 0},
	{"fd_renumber to a closed fd", byte(shim.EBADF)},
	{"path_symlink", 0},
	{"path_readlink into 4 bytes", 0},
	{"path_readlink's bytes used", 4},
	{"path_link with SYMLINK_FOLLOW", byte(shim.EINVAL)},
	{"path_link to a name ending in /", byte(shim.ENOENT)},
	{"poll_oneoff FD_WRITE stdout and stderr, and a clock", 0},
	{"poll_oneoff's events", 2},
	{"poll_oneoff's stdout event error", 0},
	{"poll_oneoff's stderr event error", 0},
	{"poll_oneoff FD_WRITE on a closed fd: the event's error", byte(shim.EBADF)},
	{"path_open O_CREAT FDFLAGS_APPEND", 0},
	{"fd_pwrite at 0 on an O_APPEND file", 0},
	{"fd_fdstat_get's fs_flags of a file opened with APPEND", 0x1},
	{"path_open O_CREAT FDFLAGS_DSYNC|FDFLAGS_SYNC", 0},
	{"fd_fdstat_get's fs_flags of a file opened with DSYNC|SYNC", 0x12},
	{"path_open with FD_READ alone", 0},
	{"FD_WRITE in the read-only descriptor's rights", 0},
	{"fd_write to the descriptor opened to read (EBADF, as POSIX)", byte(shim.EBADF)},
	{"fd_fdstat_set_rights to FD_READ alone", 0},
	{"fd_write after FD_WRITE was dropped", byte(shim.ENOTCAPABLE)},
	{"fd_fdstat_set_rights asking FD_WRITE back", byte(shim.ENOTCAPABLE)},
	{"fd_fdstat_set_rights of the preopen without PATH_FILESTAT_SET_SIZE", 0},
	{"path_open O_TRUNC without PATH_FILESTAT_SET_SIZE", byte(shim.ENOTCAPABLE)},
	{"path_open asking for every right", 0},
	{"fd_allocate on a directory", byte(shim.EISDIR)},
	{"path_link from one mount to another", byte(shim.EXDEV)},
	{"path_rename from one mount to another", byte(shim.EXDEV)},
	{"poll_oneoff with a count whose arrays' size wraps in 32 bits", byte(shim.EFAULT)},
	{"path_filestat_set_times of a dangling link without SYMLINK_FOLLOW", 0},
	{"path_open a directory", 0},
	{"fd_renumber it onto the second preopen", 0},
	{"fd_fdstat_get of its old number", byte(shim.EBADF)},
	{"the renumbered descriptor's filetype", 3},
	{"fd_renumber onto itself", 0},
	{"fd_fdstat_get after renumbering onto itself", 0},
	{"fd_renumber stdout over a preopen (wazero refused to move a preopen)", 0},
	{"path_symlink to a missing name ending in /", byte(shim.ENOENT)},
	{"fd_allocate on stdout", byte(shim.ESPIPE)},
	{"fd_filestat_set_size on stdout", byte(shim.EINVAL)},
	{"fd_fdstat_set_flags NONBLOCK on stdout", byte(shim.ENOTSUP)},
	{"fd_seek on stdout", byte(shim.ESPIPE)},
	{"fd_filestat_set_times on stdout (wazero trapped)", byte(shim.ENOTSUP)},
	{"fd_fdstat_get of stdout's old number", byte(shim.EBADF)},
	{"path_open after stdout moved: the descriptor it returns", 1},
	{"fd_renumber of the first preopen (a mount)", 0},
	{"fd_prestat_dir_name of the moved mount", 0},
	{"fd_fdstat_get of the mount's old number", byte(shim.EBADF)},
	{"poll_oneoff FD_WRITE on moved stdout and on the mount's old number", 0},
	{"... the moved stdout's event error", 0},
	{"... the old number's event error", byte(shim.EBADF)},
	{"... the subscription's descriptor after the call", 4},
	{"path_open beneath the moved mount: the descriptor it returns", 3},
}

// TestWASIGaps runs a guest making the WASI calls where plain wazero
// differs from the conformance suite, under debug and under staging (its
// stdout read back from the tenant's log): each call answers the errno a
// POSIX program can act on, path_readlink truncates, poll_oneoff answers
// FD_WRITE at once (the guest's 60 s clock never waits), fd_pwrite
// writes at its offset in a file opened to append, and fd_fdstat_get
// reports the fdflags a file was opened with, path_filestat_set_times
// without SYMLINK_FOLLOW sets a link's own times, and rights narrow (by
// path_open and fd_fdstat_set_rights), are reported, and are honoured,
// while asking for every right is never refused.
func TestWASIGaps(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	simKey := filepath.Join(t.TempDir(), "sim.key")
	for _, profile := range []string{"debug", "staging"} {
		t.Run(profile, func(t *testing.T) {
			mount, other := t.TempDir(), t.TempDir()
			bundle := testwasm.CopyBundle(t, "testdata/wasigaps",
				"name = \"wasigaps\"\nversion = \"1.0.0\"\nprofiles = [\"debug\", \"staging\"]\n"+
					"dirs = [\""+mount+"::/m::rw\", \""+other+"::/n::rw\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n"+
					"[limits]\nwall_time = \"20s\"\n")
			var stdout bytes.Buffer
			var sink bufferSink
			start := time.Now()
			_, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
				Profile: profile, Backend: tee.KindSim, SimKey: simKey, NoCache: true,
				Stdout: &stdout, Warnings: io.Discard,
				LogSink: func() (io.WriteCloser, error) { return &sink, nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("the run took %v: poll_oneoff waited for its clock", d)
			}
			out := stdout.String()
			if profile == "staging" {
				r, err := ampoule.OpenLog(&sink, id, ampoule.LogCheck{})
				if err != nil {
					t.Fatal(err)
				}
				_, out = logText(t, r)
			}
			if want := len(wasiGapChecks) + len("targ\n"); len(out) != want {
				t.Fatalf("the guest wrote %q, %d bytes, want %d", out, len(out), want)
			}
			for i, c := range wasiGapChecks {
				if out[i] != c.want {
					t.Errorf("%s: %d (%s), want %d (%s)", c.name, out[i], shim.ErrnoName(uint32(out[i])), c.want, shim.ErrnoName(uint32(c.want)))
				}
			}
			if got := out[len(wasiGapChecks):]; got != "targ\n" {
				t.Errorf("path_readlink into 4 bytes read %q, want \"targ\"", got[:4])
			}
			if _, err := os.Lstat(filepath.Join(mount, "h2")); !os.IsNotExist(err) {
				t.Errorf("path_symlink to h2/ made h2 (%v)", err)
			}
			if st, err := os.Lstat(filepath.Join(mount, "l")); err != nil || st.ModTime().UnixNano() != 1e18 {
				t.Errorf("after path_filestat_set_times without SYMLINK_FOLLOW, the link l: %v (%v), want its own mtime 10^18 ns", st, err)
			} else if st.Mode()&os.ModeSymlink == 0 {
				t.Errorf("l is %v, not the link the guest made", st.Mode())
			}
			if b, err := os.ReadFile(filepath.Join(mount, "a")); err != nil || string(b) != "Ayz" {
				t.Errorf("after fd_write \"xyz\" and fd_pwrite \"A\" at 0 in append mode, a holds %q (%v), want \"Ayz\"", b, err)
			}
		})
	}
}
