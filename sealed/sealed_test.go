package sealed

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/errcode"
)

var testKey = bytes.Repeat([]byte{0x42}, 32)

// testSealer is the measurement the tests seal as.
var testSealer = [48]byte{0xa1, 0xa1, 0xa1}

func tree() []Entry {
	t0 := time.Date(2026, 11, 23, 18, 0, 0, 123456789, time.UTC)
	return []Entry{
		{Path: "notes", Kind: Dir, Mode: 0o755, ModTime: t0},
		{Path: "notes/today.txt", Kind: File, Mode: 0o644, ModTime: t0.Add(time.Second), Data: []byte("the canary sings at dawn\n")},
		{Path: "notes/empty", Kind: File, Mode: 0o600, ModTime: t0},
		{Path: "notes/sub", Kind: Dir, Mode: 0o700, ModTime: t0},
		{Path: "notes/sub/deep.bin", Kind: File, Mode: 0o644, ModTime: t0, Data: bytes.Repeat([]byte{0, 1, 2}, 1000)},
		{Path: "link", Kind: Symlink, Mode: 0o777, ModTime: t0, Data: []byte("notes/today.txt")},
		{Path: "outside", Kind: Symlink, Mode: 0o777, ModTime: t0, Data: []byte("/etc/passwd")},
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	in := tree()
	store, err := Seal(testKey, testSealer, in, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Open(testKey, store, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip changed the tree:\n in %+v\nout %+v", in, out)
	}
	// An empty tree is a store too.
	store, err = Seal(testKey, testSealer, nil, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := Open(testKey, store, 1<<20); err != nil || len(out) != 0 {
		t.Errorf("empty tree: %v, %d entries", err, len(out))
	}
}

// TestStoreHidesNamesAndLengths: nothing of the tree is in the store's
// bytes, and trees of different shapes in one size class are the same size.
func TestStoreHidesNamesAndLengths(t *testing.T) {
	store, err := Seal(testKey, testSealer, tree(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"canary", "today", "notes", "deep.bin", "passwd"} {
		if bytes.Contains(store, []byte(s)) {
			t.Errorf("the store shows %q", s)
		}
	}
	small, _ := Seal(testKey, testSealer, []Entry{{Path: "a", Kind: File, Data: []byte("x")}}, 1<<20)
	empty, _ := Seal(testKey, testSealer, nil, 1<<20)
	if len(store) != len(small) || len(small) != len(empty) {
		t.Errorf("store sizes %d, %d, %d differ within one size class", len(store), len(small), len(empty))
	}
	if want := HeaderSize + MinBucket + 16; len(empty) != want {
		t.Errorf("empty store is %d bytes, want %d", len(empty), want)
	}
	big, _ := Seal(testKey, testSealer, []Entry{{Path: "a", Kind: File, Data: make([]byte, MinBucket)}}, 1<<20)
	if want := HeaderSize + 2*MinBucket + 16; len(big) != want {
		t.Errorf("a store past 4 KiB is %d bytes, want %d (the next power of two)", len(big), want)
	}
	// Two seals of one tree share nothing but the magic.
	again, _ := Seal(testKey, testSealer, tree(), 1<<20)
	if bytes.Equal(again[len(Magic):HeaderSize], store[len(Magic):HeaderSize]) || bytes.Equal(again[HeaderSize:HeaderSize+64], store[HeaderSize:HeaderSize+64]) {
		t.Error("two seals of one tree share a salt or ciphertext")
	}
}

func TestOpenRefusesAnotherKey(t *testing.T) {
	store, _ := Seal(testKey, testSealer, tree(), 1<<20)
	other := bytes.Repeat([]byte{0x43}, 32)
	if _, err := Open(other, store, 1<<20); !errors.Is(err, ErrForeign) {
		t.Fatalf("another key: %v, want ErrForeign", err)
	}
}

// TestOpenRefusesEveryFlip flips each byte of the header and bytes across
// the ciphertext: every one is refused, as foreign (salt, check) or as
// tampered (magic, the sealer's measurement, ciphertext, tag).
func TestOpenRefusesEveryFlip(t *testing.T) {
	store, _ := Seal(testKey, testSealer, tree(), 1<<20)
	for i := 0; i < len(store); i++ {
		if i >= HeaderSize && i < len(store)-32 && i%61 != 0 {
			continue
		}
		b := bytes.Clone(store)
		b[i] ^= 0x01
		_, err := Open(testKey, b, 1<<20)
		switch {
		case err == nil:
			t.Fatalf("flip at %d accepted", i)
		case i >= len(Magic) && i < len(Magic)+saltSize+checkSize:
			if !errors.Is(err, ErrForeign) {
				t.Fatalf("flip at %d (salt/check): %v, want ErrForeign", i, err)
			}
		case !errors.Is(err, ErrTampered):
			t.Fatalf("flip at %d: %v, want ErrTampered", i, err)
		}
	}
}

func TestOpenRefusesTruncationAndAppend(t *testing.T) {
	store, _ := Seal(testKey, testSealer, tree(), 1<<20)
	for _, n := range []int{0, 1, len(Magic), HeaderSize - 1, HeaderSize, HeaderSize + 1, len(store) / 2, len(store) - 16, len(store) - 1} {
		if _, err := Open(testKey, store[:n], 1<<20); !errors.Is(err, ErrTampered) {
			t.Errorf("cut to %d bytes: %v, want ErrTampered", n, err)
		}
	}
	if _, err := Open(testKey, append(bytes.Clone(store), 0), 1<<20); !errors.Is(err, ErrTampered) {
		t.Errorf("one byte appended: %v, want ErrTampered", err)
	}
	huge := append(bytes.Clone(store), make([]byte, 1<<20)...)
	if _, err := Open(testKey, huge, 64<<10); !errors.Is(err, ErrTampered) {
		t.Errorf("store larger than max_size allows: %v", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"dot dot", []Entry{{Path: "../x", Kind: File}}, "not a valid path"},
		{"absolute", []Entry{{Path: "/x", Kind: File}}, "not a valid path"},
		{"dot", []Entry{{Path: ".", Kind: Dir}}, "not a valid path"},
		{"empty", []Entry{{Path: "", Kind: File}}, "not a valid path"},
		{"trailing slash", []Entry{{Path: "a/", Kind: Dir}}, "not a valid path"},
		{"twice", []Entry{{Path: "a", Kind: File}, {Path: "a", Kind: File}}, "appears twice"},
		{"no parent", []Entry{{Path: "a/b", Kind: File}}, "not under a directory"},
		{"parent is a file", []Entry{{Path: "a", Kind: File}, {Path: "a/b", Kind: File}}, "not under a directory"},
		{"parent is a link", []Entry{{Path: "a", Kind: Symlink, Data: []byte("/")}, {Path: "a/b", Kind: File}}, "not under a directory"},
		{"parent after", []Entry{{Path: "a/b", Kind: File}, {Path: "a", Kind: Dir}}, "not under a directory"},
		{"setuid", []Entry{{Path: "a", Kind: File, Mode: fs.ModeSetuid | 0o755}}, "permission bits"},
		{"dir data", []Entry{{Path: "a", Kind: Dir, Data: []byte("x")}}, "has data"},
		{"empty link", []Entry{{Path: "a", Kind: Symlink}}, "no valid target"},
		{"kind", []Entry{{Path: "a", Kind: 9}}, "unknown kind"},
		{"too large", []Entry{{Path: "a", Kind: File, Data: make([]byte, 100)}}, "larger than"},
	} {
		err := Check(tc.entries, 64)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Seal(testKey, testSealer, []Entry{{Path: "../x", Kind: File}}, 64); err == nil {
		t.Error("Seal sealed an invalid tree")
	}
}

func TestDirRoundTrip(t *testing.T) {
	src := t.TempDir()
	in := tree()
	if err := WriteDir(src, in); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(src, "link")); string(got) != "the canary sings at dawn\n" {
		t.Errorf("the link inside does not resolve: %q", got)
	}
	if target, _ := os.Readlink(filepath.Join(src, "outside")); target != "/etc/passwd" {
		t.Errorf("outside link = %q", target)
	}
	out, err := ReadDir(src, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	// ReadDir walks in lexical order, WriteDir keeps any valid order.
	byPath := map[string]Entry{}
	for _, e := range out {
		byPath[e.Path] = e
	}
	if len(out) != len(in) {
		t.Fatalf("read back %d entries, wrote %d", len(out), len(in))
	}
	for _, e := range in {
		got := byPath[e.Path]
		if got.Kind != e.Kind || !bytes.Equal(got.Data, e.Data) || !got.ModTime.Equal(e.ModTime) {
			t.Errorf("%s: read back %+v, wrote %+v", e.Path, got, e)
		}
		if e.Kind == File && got.Mode != e.Mode {
			t.Errorf("%s: mode %v, wrote %v", e.Path, got.Mode, e.Mode)
		}
	}
	if err := Check(out, 1<<20); err != nil {
		t.Errorf("ReadDir's order fails Check: %v", err)
	}
}

func TestReadDirRefuses(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "big"), make([]byte, 10000), 0o644)
	if _, err := ReadDir(dir, 5000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a tree over max: %v, want ErrTooLarge", err)
	}
	fifo := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(fifo, "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadDir(fifo, 1<<20); err == nil || !strings.Contains(err.Error(), "cannot hold") {
		t.Errorf("a named pipe: %v", err)
	}
}

func TestWriteDirRefusesInvalidTree(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDir(dir, []Entry{{Path: "a/../../escape", Kind: File}}); err == nil {
		t.Fatal("WriteDir wrote a path with ..")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape")); err == nil {
		t.Fatal("a file escaped the workspace")
	}
}

func TestLoadSave(t *testing.T) {
	file := filepath.Join(t.TempDir(), "app.sealed")
	entries, found, err := Load(file, testKey, 1<<20)
	if err != nil || found || len(entries) != 0 {
		t.Fatalf("missing store: %v, found %v, %d entries", err, found, len(entries))
	}
	if err := Writable(file); err != nil {
		t.Fatalf("Writable in a temp dir: %v", err)
	}
	if err := Writable(filepath.Join(file, "missing", "x")); err == nil {
		t.Fatal("Writable in a missing directory")
	}
	if err := Save(file, testKey, testSealer, tree(), 1<<20); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("store: %v, mode %v", err, st.Mode())
	}
	entries, found, err = Load(file, testKey, 1<<20)
	if err != nil || !found || !reflect.DeepEqual(entries, tree()) {
		t.Fatalf("load: %v, found %v, %d entries", err, found, len(entries))
	}
	before, _ := os.ReadFile(file)
	// A tree over the bound is not saved, and the old store stays.
	if err := Save(file, testKey, testSealer, []Entry{{Path: "a", Kind: File, Data: make([]byte, 2<<20)}}, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized save: %v", err)
	}
	after, _ := os.ReadFile(file)
	if !bytes.Equal(before, after) {
		t.Error("a failed save changed the store")
	}
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*tmp*")); len(names) != 0 {
		t.Errorf("temporary files left: %v", names)
	}
	if _, _, err := Load(file, bytes.Repeat([]byte{1}, 32), 1<<20); !errors.Is(err, ErrForeign) {
		t.Errorf("load under another key: %v", err)
	}
	os.WriteFile(file, make([]byte, 10<<20), 0o600)
	if _, _, err := Load(file, testKey, 1<<20); !errors.Is(err, ErrTampered) {
		t.Errorf("a huge file: %v", err)
	}
}

func TestWorkspace(t *testing.T) {
	disk := t.TempDir()
	if MemoryBacked(disk) {
		t.Logf("%s is memory-backed here; the refusal is checked with a path that does not exist", disk)
		disk = filepath.Join(disk, "missing")
	}
	if _, _, err := NewWorkspace([]string{disk}); !errors.Is(err, ErrNoWorkspace) {
		t.Fatalf("a disk directory: %v, want ErrNoWorkspace", err)
	}
	dir, release, err := NewWorkspace(append([]string{disk}, WorkspaceBases()...))
	if !MemoryBacked("/dev/shm") {
		if err == nil {
			t.Fatal("a workspace without a tmpfs")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	// A live workspace is never swept, even by this very process.
	if Sweep(filepath.Dir(dir)); !exists(dir) {
		t.Fatal("Sweep removed a live workspace")
	}
	defer func() {
		release()
		if exists(dir) || exists(dir+".lock") {
			t.Error("release left the workspace or its lock")
		}
	}()
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 || !MemoryBacked(dir) {
		t.Errorf("workspace %s: %v, mode %v, memory-backed %v", dir, err, st.Mode(), MemoryBacked(dir))
	}
}

// TestSweep: a workspace whose lock nobody holds, or (without a lock file)
// whose launcher's pid is gone, is removed; one whose lock is held, and
// names that are not workspaces, stay.
func TestSweep(t *testing.T) {
	base := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, lock bool) string {
		d := filepath.Join(base, name)
		os.MkdirAll(filepath.Join(d, "sub"), 0o700)
		os.WriteFile(filepath.Join(d, "sub", "plain.txt"), []byte("plaintext"), 0o600)
		if lock {
			os.WriteFile(d+".lock", nil, 0o600)
		}
		return d
	}
	unlocked := mk(fmt.Sprintf("ampoule-sealed-%d-1", os.Getpid()), true) // another pid namespace's dead launcher may share a pid
	held := mk("ampoule-sealed-999999-2", true)
	f, err := os.OpenFile(held+".lock", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	deadPid := mk(fmt.Sprintf("ampoule-sealed-%d-3", cmd.Process.Pid), false)
	livePid := mk(fmt.Sprintf("ampoule-sealed-%d-4", os.Getpid()), false)
	other := mk("ampoule-sealed-notapid", false)
	if n := Sweep(base); n != 2 {
		t.Errorf("swept %d workspaces, want 2", n)
	}
	for _, d := range []string{unlocked, deadPid} {
		if exists(d) || exists(d+".lock") {
			t.Errorf("%s stays", d)
		}
	}
	for _, d := range []string{held, livePid, other} {
		if !exists(d) {
			t.Errorf("%s was removed", d)
		}
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestLock: one run holds a store at a time; the lock is free again once
// released.
func TestLock(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.sealed")
	unlock, err := Lock(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(file); !errors.Is(err, ErrBusy) {
		t.Fatalf("second lock: %v, want ErrBusy", err)
	}
	unlock()
	again, err := Lock(file)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	again()
	if _, err := Lock(filepath.Join(file, "missing", "x")); err == nil || errors.Is(err, ErrBusy) {
		t.Errorf("a lock in a missing directory: %v", err)
	}
}

// TestOpenMountRefusesAMissingDirectory: a store whose directory does not
// exist, or whose path runs through a file, is a usage error naming the
// directory, and nothing is made on the disk; once the directory exists
// the store opens there, a first run's.
func TestOpenMountRefusesAMissingDirectory(t *testing.T) {
	base := t.TempDir()
	notDir := filepath.Join(base, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(base, "var", "lib", "app"), filepath.Join(notDir, "app")} {
		file := filepath.Join(dir, "notes.sealed")
		m, err := OpenMount(file, &Keys{Self: testSealer, Key: testKey}, 1<<20)
		e := errcode.From(err)
		if m != nil || e.Code != errcode.SealedDirMissing || e.Code.Class() != errcode.ClassUsage || !strings.Contains(e.Error(), dir) || !strings.Contains(e.Hint(), "mkdir -p -m 700 "+dir) {
			t.Errorf("%s: %v (hint %q)", file, err, e.Hint())
		}
		if _, err := os.Lstat(filepath.Join(base, "var")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the refusal made a directory: %v", file, err)
		}
	}
	dir := filepath.Join(base, "var", "lib", "app")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m, err := OpenMount(filepath.Join(dir, "notes.sealed"), &Keys{Self: testSealer, Key: testKey}, 1<<20)
	if err != nil || m.Found {
		t.Fatalf("the store once its directory exists: %v", err)
	}
	m.Remove()
}
