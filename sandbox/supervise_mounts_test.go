package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/shim"
)

// TestSupervisedMountsKeepTheirBounds: a mount reaches the runner with what
// bounds it, not only its descriptor. Read-only stays read-only there, and a
// mount's max_size (a sealed mount's quota) ends the run with E-code
// SealedSizeLimit when the guest writes past it.
func TestSupervisedMountsKeepTheirBounds(t *testing.T) {
	base := attackTree(t)
	data := filepath.Join(base, "data")
	out := fsops(t, shim.SeccompOff, []Mount{{Host: data, Guest: "/data"}},
		"write", "/data/new", "x", "write", "/data/mine", "changed", "mkdir", "/data/d")
	if got := strings.Count(out, " error: "); got != 3 {
		t.Errorf("in a read-only mount %d of 3 changes were refused:\n%s", got, out)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "mine")); string(b) != "mine" {
		t.Errorf("a read-only mount's file is now %q", b)
	}
	if entries, _ := os.ReadDir(data); len(entries) != 1 {
		t.Errorf("a read-only mount now holds %v", entries)
	}

	s, stdout, stderr := spec(t, "fsops", "write", "/out/big", strings.Repeat("x", 2000))
	s.Dirs = []Mount{{Host: t.TempDir(), Guest: "/out", Writable: true, MaxBytes: 1000}}
	s.OpenFiles = 64
	s.FileOutputBytes = 64 << 20
	res, err := Supervise(context.Background(), testExe(t), s, Hooks{WaitExit: true})
	if codeOf(err) != errcode.SealedSizeLimit {
		t.Errorf("2000 bytes into a mount of max_size 1000: %+v %v, want SealedSizeLimit\nstdout %.500s\nstderr %.500s", res, err, stdout, stderr)
	}
}

// TestRunnerUsesTheSupervisorsDescriptor: the runner's mount is the
// directory the supervisor opened (a caller's Root, or its own open), never
// its host path opened again: a host that moves the directory and puts a
// link leading out at its path before the runner starts changes nothing
// the guest reaches.
func TestRunnerUsesTheSupervisorsDescriptor(t *testing.T) {
	base := attackTree(t)
	data := filepath.Join(base, "data")
	root, err := shim.OpenRoot(data)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := os.Rename(data, data+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "outside"), data); err != nil {
		t.Fatal(err)
	}
	out := fsops(t, shim.SeccompOff, []Mount{{Host: data, Guest: "/data", Root: root}}, "read", "/data/mine", "read", "/data/secret")
	assertNothingOutside(t, base, out)
	if !strings.Contains(out, "read ok mine") {
		t.Errorf("the guest does not see the directory the supervisor opened:\n%s", out)
	}
}
