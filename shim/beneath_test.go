package shim

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// layout builds root/ and outside/ with links of every kind and returns root.
func layout(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "sub", "deeper")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	os.WriteFile(filepath.Join(root, "file"), []byte("f"), 0o644)
	links := map[string]string{
		"abs-out":      outside,
		"abs-in":       filepath.Join(root, "file"), // absolute, though it points inside
		"rel-out":      "../outside",
		"rel-in":       "file",
		"sub/up-in":    "../file",
		"sub/up-out":   "../../outside/secret",
		"dangle-in":    "missing",
		"dangle-out":   "../outside/new",
		"chain":        "sub/up-out",
		"loop":         "loop",
		"proc":         "/proc/self/root",
		"sub/deeper/x": "../../../outside",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestOpen(t *testing.T) {
	root, err := OpenRoot(layout(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range []struct {
		name   string
		flags  int
		escape bool
		errno  unix.Errno // when not an escape: 0 for success
	}{
		{"file", unix.O_RDONLY, false, 0},
		{"/file", unix.O_RDONLY, false, 0},
		{".", unix.O_PATH, false, 0},
		{"", unix.O_PATH, false, 0},
		{"sub/deeper", unix.O_PATH, false, 0},
		{"missing", unix.O_PATH, false, unix.ENOENT},
		{"missing", unix.O_CREAT | unix.O_WRONLY, false, 0},
		{"missing-dir/missing", unix.O_CREAT | unix.O_WRONLY, false, unix.ENOENT},
		{"..", unix.O_PATH, true, 0},
		{"../outside/secret", unix.O_RDONLY, true, 0},
		{"sub/../../outside", unix.O_PATH, true, 0},
		{"sub/../file", unix.O_RDONLY, false, 0},
		{"abs-out", unix.O_PATH, true, 0},
		{"abs-out/secret", unix.O_RDONLY, true, 0},
		{"abs-out", unix.O_PATH | unix.O_NOFOLLOW, false, 0}, // the link itself lies beneath
		{"abs-in", unix.O_RDONLY, true, 0},                   // absolute links are refused
		{"rel-out", unix.O_PATH, true, 0},
		{"rel-out/secret", unix.O_RDONLY, true, 0},
		{"rel-out/new-file", unix.O_CREAT | unix.O_WRONLY, true, 0},
		{"rel-in", unix.O_RDONLY, false, 0},
		{"sub/up-in", unix.O_RDONLY, false, 0},
		{"sub/up-out", unix.O_RDONLY, true, 0},
		{"sub/up-out", unix.O_PATH | unix.O_NOFOLLOW, false, 0},
		{"dangle-in", unix.O_CREAT | unix.O_WRONLY, false, 0},
		{"dangle-out", unix.O_CREAT | unix.O_WRONLY, true, 0}, // creating through it would land outside
		{"chain", unix.O_RDONLY, true, 0},
		{"proc", unix.O_PATH, true, 0},
		{"sub/deeper/x/secret", unix.O_RDONLY, true, 0},
		{"loop", unix.O_RDONLY, false, unix.ELOOP}, // not an escape: the kernel's own error
	} {
		fd, err := root.Open(tc.name, tc.flags, 0o600)
		if err == nil {
			unix.Close(fd)
		}
		if got := errors.Is(err, ErrEscape); got != tc.escape {
			t.Errorf("Open(%q, %#x) = %v, want escape=%v", tc.name, tc.flags, err, tc.escape)
			continue
		}
		if !tc.escape && (tc.errno == 0) != (err == nil) || tc.errno != 0 && !errors.Is(err, tc.errno) {
			t.Errorf("Open(%q, %#x) = %v, want %v", tc.name, tc.flags, err, tc.errno)
		}
	}
	if _, err := os.Stat(filepath.Join(root.Path(), "..", "outside", "new")); err == nil {
		t.Error("a create through dangle-out landed outside")
	}
}

func TestParent(t *testing.T) {
	root, err := OpenRoot(layout(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range []struct {
		name    string
		base    string
		dirOnly bool
		err     error
	}{
		{"file", "file", false, nil},
		{"/sub/deeper/", "deeper", true, nil},
		{"abs-out", "abs-out", false, nil}, // the link itself, never followed
		{"sub/up-out", "up-out", false, nil},
		{".", "", false, ErrMountRoot},
		{"/", "", false, ErrMountRoot},
		{"", "", false, ErrMountRoot},
		{"..", "", false, ErrEscape},
		{"sub/..", "", false, ErrDots},
		{"sub/.", "", false, ErrDots},
		{"abs-out/x", "", false, ErrEscape},
		{"rel-out/x", "", false, ErrEscape},
		{"sub/deeper/x/y", "", false, ErrEscape},
		{"missing-dir/x", "", false, unix.ENOENT},
		{"file/x", "", false, unix.ENOTDIR},
	} {
		fd, base, dirOnly, err := root.Parent(tc.name)
		if err == nil {
			unix.Close(fd)
		}
		if tc.err != nil && !errors.Is(err, tc.err) || tc.err == nil && err != nil {
			t.Errorf("Parent(%q) = %v, want %v", tc.name, err, tc.err)
			continue
		}
		if base != tc.base || dirOnly != tc.dirOnly {
			t.Errorf("Parent(%q) = %q %v, want %q %v", tc.name, base, dirOnly, tc.base, tc.dirOnly)
		}
	}
}

// A root is the directory it opened, whatever later happens to its host
// path: renamed, and a link to elsewhere put in its place.
func TestRootFollowsTheObject(t *testing.T) {
	base := t.TempDir()
	dir, outside := filepath.Join(base, "data"), filepath.Join(base, "outside")
	os.MkdirAll(dir, 0o755)
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(dir, "mine"), []byte("m"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	root, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	if fd, err := root.Open("secret", unix.O_RDONLY, 0); err == nil {
		unix.Close(fd)
		t.Error("the root followed its host path to the link put in its place")
	}
	fd, err := root.Open("mine", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatalf("the renamed directory is no longer reached: %v", err)
	}
	unix.Close(fd)
}

// A root opened beneath another refuses a link that leads out of it.
func TestOpenRootBeneath(t *testing.T) {
	parent, err := OpenRoot(layout(t))
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	for _, name := range []string{"sub", "sub/deeper", "sub/..", "."} {
		r, err := OpenRootBeneath(parent, name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		r.Close()
	}
	for _, name := range []string{"abs-out", "rel-out", "..", "sub/deeper/x", "/etc"} {
		if r, err := OpenRootBeneath(parent, name); err == nil {
			r.Close()
			t.Errorf("%s: opened as a root beneath", name)
		}
	}
}

func TestHostRootConfinesNothing(t *testing.T) {
	root, err := OpenRoot("/")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	fd, err := root.Open("proc/self/root/etc", unix.O_PATH, 0)
	if err != nil {
		t.Fatalf("under / every path is beneath: %v", err)
	}
	unix.Close(fd)
}

func TestOpenRootErrors(t *testing.T) {
	if _, err := OpenRoot(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing root opened")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := OpenRoot(f); err == nil {
		t.Error("a file opened as a root")
	}
}

// Only the host's own "/" confines nothing: a descriptor of any other
// directory handed over under the name "/" (a runner's mount is named by
// its host path, for messages only) still confines what it resolves.
func TestRootNamedSlashStillConfines(t *testing.T) {
	dir := layout(t)
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	root, err := RootFromFD(fd, "/")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, name := range []string{"../outside/secret", "rel-out/secret", "abs-out/secret", "sub/up-out"} {
		if fd, err := root.Open(name, unix.O_RDONLY, 0); err == nil {
			unix.Close(fd)
			t.Errorf("%s: opened outside a directory named \"/\"", name)
		} else if !errors.Is(err, ErrEscape) {
			t.Errorf("%s: %v, want ErrEscape", name, err)
		}
	}
}

// TestStatHere: StatHere answers, in one call, only for a single name whose
// object it need not follow, and agrees with the full resolution where it
// answers; every link it would have to follow (out, in, dangling, a loop,
// a magic link) and every path of more than one component is left to Open,
// which refuses those leaving the root.
func TestStatHere(t *testing.T) {
	dir := layout(t)
	root, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	resolved := func(name string, follow bool) (unix.Stat_t, error) {
		flags := unix.O_PATH
		if !follow {
			flags |= unix.O_NOFOLLOW
		}
		fd, err := root.Open(name, flags, 0)
		if err != nil {
			return unix.Stat_t{}, err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		return st, unix.Fstat(fd, &st)
	}
	for _, tc := range []struct {
		name   string
		follow bool
		done   bool
	}{
		{"file", true, true},
		{"/file", true, true},
		{"file", false, true},
		{"sub", true, true},
		{"missing", true, true},
		{"abs-out", false, true}, // the link itself, not followed
		{"rel-out", false, true},
		{"abs-out", true, false},
		{"rel-out", true, false},
		{"rel-in", true, false},
		{"dangle-out", true, false},
		{"loop", true, false},
		{"proc", true, false},
		{"sub/up-out", false, false},
		{"sub/deeper", true, false},
		{"file/", true, false},
		{".", true, false},
		{"..", true, false},
		{"", true, false},
	} {
		st, done, err := root.StatHere(tc.name, tc.follow)
		if done != tc.done {
			t.Errorf("StatHere(%q, follow %v): done %v, want %v", tc.name, tc.follow, done, tc.done)
			continue
		}
		if !done {
			continue
		}
		want, werr := resolved(tc.name, tc.follow)
		if !errors.Is(err, errnoOf(werr)) && (err != nil || werr != nil) {
			t.Errorf("StatHere(%q, follow %v): %v; the full resolution: %v", tc.name, tc.follow, err, werr)
			continue
		}
		if err == nil && (st.Ino != want.Ino || st.Dev != want.Dev || st.Mode != want.Mode) {
			t.Errorf("StatHere(%q, follow %v): inode %d mode %o; the full resolution: inode %d mode %o", tc.name, tc.follow, st.Ino, st.Mode, want.Ino, want.Mode)
		}
	}
	// What an outward link names is never stat'ed through it.
	if _, done, _ := root.StatHere("abs-out", true); done {
		t.Fatal("StatHere followed a link out of the root")
	}
}

// errnoOf is err's errno, or nil.
func errnoOf(err error) error {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return err
}
