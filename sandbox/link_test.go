package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ampoule-run/ampoule/shim"
)

// TestHardLinkNeverFollowsALink: a hard link made of a symbolic link is a
// link to the symbolic link itself, never to what it points at: a guest
// linking a link that leads out gets no name for the host file outside,
// and reading or writing through the new name stays beneath the mount.
func TestHardLinkNeverFollowsALink(t *testing.T) {
	base := attackTree(t)
	mnt := filepath.Join(base, "work")
	os.Symlink("../outside/secret", filepath.Join(mnt, "rel"))
	os.Symlink(filepath.Join(base, "outside", "secret"), filepath.Join(mnt, "abs"))
	out := fsops(t, shim.SeccompOff, []Mount{{Host: mnt, Guest: "/work", Writable: true}},
		"ln", "/work/rel", "/work/hard-rel", "ln", "/work/abs", "/work/hard-abs",
		"read", "/work/hard-rel", "read", "/work/hard-abs",
		"write", "/work/hard-rel", "x", "write", "/work/hard-abs", "x")
	// (assertNothingOutside would follow the links on the host itself.)
	if strings.Contains(out, hostSecret) {
		t.Errorf("the guest read a host file outside its mount:\n%s", out)
	}
	for _, name := range []string{"hard-rel", "hard-abs"} {
		if st, err := os.Lstat(filepath.Join(mnt, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		} else if st.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is a %v, not a link to a link", name, st.Mode())
		}
	}
	if b, err := os.ReadFile(filepath.Join(base, "outside", "secret")); err != nil || string(b) != hostSecret {
		t.Errorf("the host secret is now %q (%v)", b, err)
	}
	if st, err := os.Stat(filepath.Join(base, "outside", "secret")); err != nil || nlink(st) != 1 {
		t.Errorf("the host secret gained a name inside the mount")
	}
}

func nlink(st os.FileInfo) uint64 { return uint64(st.Sys().(*syscall.Stat_t).Nlink) }
