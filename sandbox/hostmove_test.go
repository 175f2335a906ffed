package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostMovesAMountUnderEveryCall: once the runner holds a mount, the
// host moving the directory away and putting a link leading out at its
// path changes nothing for any call, those that act on a name's parent
// (rename, readlink, link) included: none goes by the host path.
func TestHostMovesAMountUnderEveryCall(t *testing.T) {
	for _, action := range actions(t) {
		t.Run(action.String(), func(t *testing.T) {
			base := attackTree(t)
			work := filepath.Join(base, "work")
			os.WriteFile(filepath.Join(work, "a"), []byte("a"), 0o644)
			os.Symlink("inside-target", filepath.Join(work, "l"))
			s, stdout, stderr := spec(t, "fsops", "mv", "/work/a", "/work/b", "readlink", "/work/l",
				"ln", "/work/b", "/work/c", "read", "/work/c", "touch", "/work/c")
			s.Seccomp, s.Dirs, s.OpenFiles, s.FileOutputBytes = action, []Mount{{Host: work, Guest: "/work", Writable: true}}, 64, 64<<20
			res, err := Supervise(context.Background(), testExe(t), s, Hooks{
				WaitExit: true,
				Ready: func() {
					if e := os.Rename(work, work+".old"); e != nil {
						t.Error(e)
					}
					if e := os.Symlink(filepath.Join(base, "outside"), work); e != nil {
						t.Error(e)
					}
				},
			})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("%+v %v\n%s", res, err, stderr)
			}
			out := stdout.String()
			if strings.Contains(out, hostSecret) {
				t.Errorf("the guest read a host file outside its mount:\n%s", out)
			}
			for _, want := range []string{"mv ok", "readlink ok inside-target", "ln ok", "read ok a", "touch ok"} {
				if !strings.Contains(out, want) {
					t.Errorf("want %q: the call went by the host path:\n%s", want, out)
				}
			}
			if entries, _ := os.ReadDir(filepath.Join(base, "outside")); len(entries) != 1 {
				t.Errorf("the guest changed a host directory outside its mounts: %v", entries)
			}
		})
	}
}
