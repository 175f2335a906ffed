package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/shim"
)

const hostSecret = "HOST-SECRET-7f3a"

// attackTree lays out a host with a secret outside the mounts and returns
// the base directory: base/outside/secret, base/work, base/work/in.
func attackTree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{"outside", "work/in", "data"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(base, "outside", "secret"), []byte(hostSecret), 0o644)
	os.WriteFile(filepath.Join(base, "data", "mine"), []byte("mine"), 0o644)
	return base
}

// fsops runs the fsops guest with mounts through a real runner process
// under the given seccomp action (production's gate either way) and
// returns its stdout.
func fsops(t *testing.T, action shim.SeccompAction, dirs []Mount, args ...string) string {
	t.Helper()
	s, stdout, stderr := spec(t, "fsops", args...)
	s.Seccomp = action
	s.Dirs = dirs
	s.OpenFiles = 64
	s.FileOutputBytes = 64 << 20
	res, err := Supervise(context.Background(), testExe(t), s, Hooks{WaitExit: true})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("fsops %.200q: %+v %v\nstdout %.2000s\nstderr %.2000s", args, res, err, stdout, stderr)
	}
	return stdout.String()
}

// actions are the confinements the attacks run under: none (debug),
// staging's seccomp errno and production's seccomp kill.
func actions(t *testing.T) []shim.SeccompAction {
	as := []shim.SeccompAction{shim.SeccompOff}
	if _, err := shim.Allowlist(); err == nil {
		as = append(as, shim.SeccompErrno, shim.SeccompKill)
	} else {
		t.Logf("no seccomp allowlist here (%v): only the unconfined runner is tried", err)
	}
	return as
}

// assertNothingOutside fails if the guest's words or the host's files show
// it reached outside its mounts.
func assertNothingOutside(t *testing.T, base, out string) {
	t.Helper()
	if strings.Contains(out, hostSecret) {
		t.Errorf("the guest read a host file outside its mounts:\n%s", out)
	}
	filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		if b, _ := os.ReadFile(p); strings.Contains(string(b), hostSecret) && !strings.HasSuffix(p, filepath.Join("outside", "secret")) {
			t.Errorf("the host secret was copied to %s", p)
		}
		return nil
	})
	entries, _ := os.ReadDir(filepath.Join(base, "outside"))
	if len(entries) != 1 {
		t.Errorf("the guest changed a host directory outside its mounts: %v", entries)
	}
}

// One guest, no race: it mounts work and work/in, renames /work/in away and
// puts a link leading out in its place, then reads and writes through /in.
// The /in mount is the directory it was, wherever that now lies.
func TestRenameUnderASecondMount(t *testing.T) {
	for _, action := range actions(t) {
		t.Run(action.String(), func(t *testing.T) {
			base := attackTree(t)
			dirs := []Mount{
				{Host: filepath.Join(base, "work"), Guest: "/work", Writable: true},
				{Host: filepath.Join(base, "work", "in"), Guest: "/in", Writable: true},
			}
			up := strings.Repeat("../", 12)
			out := fsops(t, action, dirs,
				"mv", "/work/in", "/work/in.old",
				"symlink", up, "/work/in",
				"read", "/in/"+strings.TrimPrefix(filepath.Join(base, "outside", "secret"), "/"),
				"copy", "/in/"+strings.TrimPrefix(filepath.Join(base, "outside", "secret"), "/"), "/work/leak",
				"write", "/in/"+strings.TrimPrefix(filepath.Join(base, "outside", "planted"), "/"), "x",
				"write", "/in/planted-inside", "y",
			)
			assertNothingOutside(t, base, out)
			if !strings.Contains(out, "mv ok") || !strings.Contains(out, "symlink ok") {
				t.Fatalf("the set-up moves failed:\n%s", out)
			}
			// The write through /in lands in the directory /in was.
			if b, err := os.ReadFile(filepath.Join(base, "work", "in.old", "planted-inside")); err != nil || string(b) != "y" {
				t.Errorf("a write through /in did not land in its directory: %q %v\n%s", b, err, out)
			}
		})
	}
}

// The host, no race: during a run it renames a mount's directory and puts a
// link to / in its place; the guest's next reads still see the directory
// that was mounted.
func TestHostSwapsAMount(t *testing.T) {
	for _, action := range actions(t) {
		t.Run(action.String(), func(t *testing.T) {
			base := attackTree(t)
			data := filepath.Join(base, "data")
			dirs := []Mount{{Host: data, Guest: "/data"}, {Host: filepath.Join(base, "work"), Guest: "/work", Writable: true}}
			secret := "/data/" + strings.TrimPrefix(filepath.Join(base, "outside", "secret"), "/")
			s, stdout, stderr := spec(t, "fsops", "walk", "2000", "/data/mine", secret)
			s.Seccomp, s.Dirs = action, dirs
			done := make(chan struct{})
			var res Result
			var err error
			go func() {
				defer close(done)
				res, err = Supervise(context.Background(), testExe(t), s, Hooks{
					Ready: func() {
						// Before the guest's first instruction: swap the mount.
						if e := os.Rename(data, data+".old"); e != nil {
							t.Error(e)
						}
						if e := os.Symlink("/", data); e != nil {
							t.Error(e)
						}
					},
				})
			}()
			<-done
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("%+v %v\n%s", res, err, stderr)
			}
			out := stdout.String()
			assertNothingOutside(t, base, out)
			if !strings.Contains(out, `walk read /data/mine "mine"`) {
				t.Errorf("the mounted directory was lost when its host path moved:\n%.400s", out)
			}
		})
	}
}

// Races: a host process swaps a subdirectory of a mount for a link leading
// out, and back, as fast as it can, while the guest walks paths through it.
func TestHostRacesLinkSwaps(t *testing.T) {
	for _, action := range actions(t) {
		t.Run(action.String(), func(t *testing.T) {
			base := attackTree(t)
			data := filepath.Join(base, "data")
			sub := filepath.Join(data, "sub")
			os.MkdirAll(sub, 0o755)
			os.WriteFile(filepath.Join(sub, "secret"), []byte("inside"), 0o644)
			// The link has the same shape as the directory: sub/secret
			// through it is base/outside/secret.
			link := filepath.Join(data, "sub.link")
			if err := os.Symlink(filepath.Join(base, "outside"), link); err != nil {
				t.Fatal(err)
			}
			rel := filepath.Join(data, "sub.rel")
			if err := os.Symlink("../outside", rel); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var swaps atomic.Int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				real := filepath.Join(data, "sub.real")
				for {
					select {
					case <-stop:
						return
					default:
					}
					// sub is in turn the directory, an absolute link out and
					// a relative one; each swap is one rename.
					os.Rename(sub, real)
					os.Rename(link, sub)
					os.Rename(sub, link)
					os.Rename(rel, sub)
					os.Rename(sub, rel)
					os.Rename(real, sub)
					swaps.Add(1)
				}
			}()
			dirs := []Mount{{Host: data, Guest: "/data", Writable: true}}
			out := fsops(t, action, dirs, "walk", "3000", "/data/sub/secret")
			close(stop)
			wg.Wait()
			assertNothingOutside(t, base, out)
			if !strings.Contains(out, "walk done") {
				t.Errorf("the walk did not finish:\n%.400s", out)
			}
			t.Logf("%d swap rounds; %d reads through sub succeeded", swaps.Load(), strings.Count(out, "walk read"))
		})
	}
}

// Two runs share one writable mount: one keeps swapping a subdirectory for
// a link leading out while the other walks through it.
func TestTwoRunsRaceOnOneMount(t *testing.T) {
	base := attackTree(t)
	data := filepath.Join(base, "data")
	os.MkdirAll(filepath.Join(data, "sub"), 0o755)
	os.WriteFile(filepath.Join(data, "sub", "secret"), []byte("inside"), 0o644)
	dirs := []Mount{{Host: data, Guest: "/data", Writable: true}}
	up := strings.Repeat("../", 12) + strings.TrimPrefix(filepath.Join(base, "outside"), "/")
	var swapper []string
	for range 300 {
		swapper = append(swapper, "mv", "/data/sub", "/data/sub.real", "symlink", up, "/data/sub",
			"rm", "/data/sub", "mv", "/data/sub.real", "/data/sub")
	}
	var wg sync.WaitGroup
	var swapOut string
	wg.Add(1)
	go func() {
		defer wg.Done()
		swapOut = fsops(t, shim.SeccompOff, dirs, swapper...)
	}()
	out := fsops(t, shim.SeccompOff, dirs, "walk", "3000", "/data/sub/secret")
	wg.Wait()
	assertNothingOutside(t, base, out+swapOut)
	if strings.Count(swapOut, "symlink ok") == 0 {
		t.Fatalf("the swapping run made no link:\n%.400s", swapOut)
	}
}

// Every call that names a path, through a relative link out (rel -> ..)
// and an absolute one (abs -> /etc), changes nothing outside the mount and
// reads nothing from there.
func TestEveryPathCallIsConfined(t *testing.T) {
	for _, action := range actions(t) {
		t.Run(action.String(), func(t *testing.T) {
			base := attackTree(t)
			mnt := filepath.Join(base, "work")
			os.Symlink("../outside", filepath.Join(mnt, "rel"))
			os.Symlink(filepath.Join(base, "outside"), filepath.Join(mnt, "abs"))
			os.WriteFile(filepath.Join(mnt, "own"), []byte("own"), 0o644)
			before, _ := os.Stat(filepath.Join(base, "outside", "secret"))
			var args []string
			for _, l := range []string{"/work/rel", "/work/abs"} {
				args = append(args,
					"read", l+"/secret",
					"copy", l+"/secret", "/work/leak",
					"write", l+"/planted", "x",
					"append", l+"/secret", "x",
					"mkdir", l+"/newdir",
					"rmdir", l+"/../outside",
					"rm", l+"/secret",
					"mv", l+"/secret", "/work/stolen",
					"mv", "/work/own", l+"/planted-by-mv",
					"ln", l+"/secret", "/work/hardlink",
					"ln", "/work/own", l+"/planted-by-ln",
					"symlink", "x", l+"/planted-link",
					"readlink", l+"/secret",
					"stat", l+"/secret",
					"lstat", l+"/secret",
					"ls", l,
					"touch", l+"/secret",
					"truncate", l+"/secret", "0",
					"pwrite", l+"/secret", "0", "x",
				)
			}
			out := fsops(t, action, []Mount{{Host: mnt, Guest: "/work", Writable: true}}, args...)
			assertNothingOutside(t, base, out)
			after, err := os.Stat(filepath.Join(base, "outside", "secret"))
			if err != nil || !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
				t.Errorf("the host secret changed: %v %v -> %v", err, before, after)
			}
			for _, want := range []string{"ls error", "stat error", "lstat error", "readlink error", "touch error", "truncate error"} {
				if !strings.Contains(out, want) {
					t.Errorf("want %q among:\n%s", want, out)
				}
			}
		})
	}
}

// A guest can neither remove nor rename its mount's own directory, even
// an empty one, nor replace it by renaming onto it.
func TestMountRootStays(t *testing.T) {
	base := attackTree(t)
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o755)
	dirs := []Mount{{Host: empty, Guest: "/empty", Writable: true}, {Host: filepath.Join(base, "work"), Guest: "/work", Writable: true}}
	out := fsops(t, shim.SeccompOff, dirs, "rmdir", "/empty", "mv", "/empty", "/empty2", "mkdir", "/work/d", "mv", "/work/d", "/empty", "rmdir", "/empty/.")
	if _, err := os.Stat(empty); err != nil {
		t.Fatalf("the guest removed its mount's directory: %v\n%s", err, out)
	}
	if strings.Count(out, " ok") > 1 { // only the mkdir may succeed
		t.Errorf("an operation on the mount root succeeded:\n%s", out)
	}
}

// Everything a guest makes counts against file_output: files, directories
// and links cost a block each, link targets their length, and a file grown
// by a hole (truncate or a write past its end) the whole growth.
func TestFileOutputCountsEverythingMade(t *testing.T) {
	base := attackTree(t)
	mnt := filepath.Join(base, "work")
	dirs := []Mount{{Host: mnt, Guest: "/work", Writable: true}}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"directories", repeat(400, func(i int) []string { return []string{"mkdir", "/work/d" + itoa(uint32(i))} })},
		{"links", repeat(400, func(i int) []string {
			return []string{"symlink", strings.Repeat("x", 1000), "/work/l" + itoa(uint32(i))}
		})},
		{"empty files", repeat(400, func(i int) []string { return []string{"write", "/work/f" + itoa(uint32(i)), ""} })},
		{"sparse by truncate", []string{"write", "/work/sparse", "", "truncate", "/work/sparse", "1099511627776"}},
		{"sparse by pwrite", []string{"pwrite", "/work/hole", "1099511627776", "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, stdout, stderr := spec(t, "fsops", tc.args...)
			s.Dirs = dirs
			s.FileOutputBytes = 1 << 20 // 1 MiB: 256 blocks
			_, err := Supervise(context.Background(), testExe(t), s, Hooks{WaitExit: true})
			if codeOf(err) != errcode.FileOutputLimit {
				t.Errorf("want %v, got %v\n%.300s\n%s", errcode.FileOutputLimit, err, stdout, stderr)
			}
			var used int64
			filepath.Walk(mnt, func(p string, fi os.FileInfo, err error) error {
				if err == nil {
					used += fi.Size()
				}
				return nil
			})
			if used > 2<<20 {
				t.Errorf("the mount grew by %d bytes under a 1 MiB limit", used)
			}
			os.RemoveAll(mnt)
			os.Mkdir(mnt, 0o755)
		})
	}
}

func repeat(n int, f func(int) []string) []string {
	var out []string
	for i := range n {
		out = append(out, f(i)...)
	}
	return out
}
