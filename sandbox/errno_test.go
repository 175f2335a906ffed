package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/shim"
)

// TestErrnoFailsClosed: what a guest is told of a failure is never
// success. Each of shim's refusals has its own errno, wrapped or not, the
// kernel's errors are passed on, and anything else, a zero errno included,
// is EIO.
func TestErrnoFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want experimentalsys.Errno
	}{
		{nil, 0},
		{shim.ErrEscape, experimentalsys.EPERM},
		{fmt.Errorf("open: %w", shim.ErrEscape), experimentalsys.EPERM},
		{shim.ErrMountRoot, experimentalsys.EACCES},
		{shim.ErrDots, experimentalsys.EINVAL},
		{shim.ErrBusy, experimentalsys.EAGAIN},
		{unix.ENOENT, experimentalsys.ENOENT},
		{&os.PathError{Op: "open", Path: "x", Err: unix.EACCES}, experimentalsys.EACCES},
		{unix.Errno(0), experimentalsys.EIO},
		{errors.New("something no one foresaw"), experimentalsys.EIO},
	} {
		if got := errno(tc.err); got != tc.want {
			t.Errorf("errno(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestReadlinkStaysBeneath: readlink through a link leading out of the
// mount is refused; the target of a link outside is never read.
func TestReadlinkStaysBeneath(t *testing.T) {
	base := t.TempDir()
	mnt, outside := filepath.Join(base, "work"), filepath.Join(base, "outside")
	for _, d := range []string{mnt, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(hostSecret, filepath.Join(outside, "pointer")); err != nil {
		t.Fatal(err)
	}
	os.Symlink("../outside", filepath.Join(mnt, "rel"))
	os.Symlink(outside, filepath.Join(mnt, "abs"))
	os.Symlink("inside-target", filepath.Join(mnt, "own"))
	out := fsops(t, shim.SeccompOff, []Mount{{Host: mnt, Guest: "/work", Writable: true}},
		"readlink", "/work/rel/pointer", "readlink", "/work/abs/pointer", "readlink", "/work/own")
	if strings.Contains(out, hostSecret) {
		t.Errorf("the guest read a link's target outside its mount:\n%s", out)
	}
	if strings.Count(out, "readlink error") != 2 || !strings.Contains(out, "readlink ok inside-target") {
		t.Errorf("want two refusals and the mount's own link read:\n%s", out)
	}
}
