package codecache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// memDir is a fresh directory on /dev/shm, the memory tier a test uses:
// each call stands for a newly booted VM, whose memory holds nothing.
func memDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "ampoule-codecache-test-")
	if err != nil {
		t.Fatalf("the memory tier needs /dev/shm (tmpfs): %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Join(d, "code")
}

func module(t *testing.T) []byte {
	t.Helper()
	m, err := os.ReadFile("../testdata/tiny/module.wasm")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// otherModule is tiny with one more byte of data: another module.
func otherModule(t *testing.T) []byte {
	m := module(t)
	i := bytes.Index(m, []byte("tiny module\n"))
	if i < 0 {
		t.Fatal("tiny's data not found")
	}
	o := bytes.Clone(m)
	o[i] = 'T'
	return o
}

func keyOf(b byte) func() ([]byte, error) {
	return func() ([]byte, error) { return bytes.Repeat([]byte{b}, 32), nil }
}

// compileAndRun compiles module with dir as wazero's cache and runs it,
// returning its stdout: the proof that what the cache gave wazero works.
func compileAndRun(t *testing.T, dir string, mod []byte) string {
	t.Helper()
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close(ctx)
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCompilationCache(cache))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	var out bytes.Buffer
	if _, err := rt.InstantiateWithConfig(ctx, mod, wazero.NewModuleConfig().WithStdout(&out)); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// run is one run's use of the cache: open, compile and run, commit.
func run(t *testing.T, mem, disk string, mod []byte, key func() ([]byte, error)) (Outcome, string) {
	t.Helper()
	c, err := Open(mod, Options{Memory: mem, Disk: disk, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	out := compileAndRun(t, c.Dir(), mod)
	if _, err := c.Commit(); err != nil {
		t.Fatal(err)
	}
	return c.Outcome(), out
}

func diskEntry(t *testing.T, disk string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(disk, "*.code"))
	if err != nil || len(m) != 1 {
		t.Fatalf("disk entries: %v %v", m, err)
	}
	return m[0]
}

// TestTiers: the first run compiles and stores; the next run in the same
// VM finds the code in memory; a run in a new VM finds it on disk,
// verified; each run's output is the module's.
func TestTiers(t *testing.T) {
	disk := t.TempDir()
	mem := memDir(t)
	mod := module(t)
	want := "hello from a tiny module\n"
	for i, step := range []struct {
		mem  string
		want Outcome
	}{{mem, Miss}, {mem, MemoryHit}, {memDir(t), DiskHit}, {memDir(t), DiskHit}} {
		got, out := run(t, step.mem, disk, mod, keyOf(1))
		if got != step.want || out != want {
			t.Errorf("run %d: %v, output %q; want %v, %q", i, got, out, step.want, want)
		}
	}
	if info, err := os.Stat(diskEntry(t, disk)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the disk entry: %v, %v", info, err)
	}
}

// TestHostileDisk: the host changes the disk tier between runs. Every
// change is refused, the run compiles afresh (its output is right), and
// the fresh code replaces the entry, which the next new VM then uses.
func TestHostileDisk(t *testing.T) {
	mod, other := module(t), otherModule(t)
	// A disk tier holding a good entry for mod and one for other.
	seed := func(t *testing.T) (disk, entry, otherEntry string) {
		disk = t.TempDir()
		run(t, memDir(t), disk, mod, keyOf(1))
		entry = diskEntry(t, disk)
		otherDisk := t.TempDir()
		run(t, memDir(t), otherDisk, other, keyOf(1))
		return disk, entry, diskEntry(t, otherDisk)
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, entry, otherEntry string)
		reason string
	}{
		{"a byte flipped in the code", func(t *testing.T, entry, _ string) {
			data, _ := os.ReadFile(entry)
			data[len(data)/2] ^= 0x40
			os.WriteFile(entry, data, 0o600)
		}, "MAC"},
		{"a byte of the salt flipped", func(t *testing.T, entry, _ string) {
			data, _ := os.ReadFile(entry)
			data[len(magic)+saltLen/2] ^= 1
			os.WriteFile(entry, data, 0o600)
		}, "MAC"},
		{"the MAC's last byte flipped", func(t *testing.T, entry, _ string) {
			data, _ := os.ReadFile(entry)
			data[len(data)-1] ^= 1
			os.WriteFile(entry, data, 0o600)
		}, "MAC"},
		{"truncated by half", func(t *testing.T, entry, _ string) {
			info, _ := os.Stat(entry)
			os.Truncate(entry, info.Size()/2)
		}, "truncated"},
		{"truncated to nothing", func(t *testing.T, entry, _ string) { os.Truncate(entry, 0) }, "truncated"},
		{"swapped for another module's entry", func(t *testing.T, entry, otherEntry string) {
			data, _ := os.ReadFile(otherEntry)
			os.WriteFile(entry, data, 0o600)
		}, "MAC"},
		{"made for another measurement", func(t *testing.T, entry, _ string) {
			d := t.TempDir()
			run(t, memDir(t), d, mod, keyOf(2)) // the key of another measurement
			data, _ := os.ReadFile(diskEntry(t, d))
			os.WriteFile(entry, data, 0o600)
		}, "MAC"},
		{"a symbolic link out of the cache to a good entry", func(t *testing.T, entry, _ string) {
			good := filepath.Join(t.TempDir(), "good")
			os.Rename(entry, good)
			os.Symlink(good, entry)
		}, "opening"},
		{"a FIFO", func(t *testing.T, entry, _ string) {
			os.Remove(entry)
			if err := syscall.Mkfifo(entry, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"grown past its bound", func(t *testing.T, entry, _ string) {
			os.Truncate(entry, maxEntryFloor+int64(len(mod))*maxEntryFactor+1)
		}, "above the bound"},
		{"another format", func(t *testing.T, entry, _ string) {
			data, _ := os.ReadFile(entry)
			data[len(magic)-1]++
			os.WriteFile(entry, data, 0o600)
		}, "format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk, entry, otherEntry := seed(t)
			tc.change(t, entry, otherEntry)
			c, err := Open(mod, Options{Memory: memDir(t), Disk: disk, Key: keyOf(1)})
			if err != nil {
				t.Fatal(err)
			}
			if c.Outcome() != Refused || !strings.Contains(c.Reason(), tc.reason) {
				t.Fatalf("outcome %v (%q), want refused for %q", c.Outcome(), c.Reason(), tc.reason)
			}
			if left, _ := os.ReadDir(c.wazeroDir()); len(left) != 0 {
				t.Fatalf("a refused entry left %v in the memory tier", left)
			}
			if out := compileAndRun(t, c.Dir(), mod); out != "hello from a tiny module\n" {
				t.Fatalf("the fresh compile's output: %q", out)
			}
			if stored, err := c.Commit(); !stored || err != nil {
				t.Fatalf("the fresh code was not stored: %v %v", stored, err)
			}
			if got, out := run(t, memDir(t), disk, mod, keyOf(1)); got != DiskHit || out != "hello from a tiny module\n" {
				t.Errorf("after the replacement: %v, %q", got, out)
			}
		})
	}
}

// TestNoDiskTier: without a key (a backend that derives none) code lasts
// only in memory, and nothing is written to the disk.
func TestNoDiskTier(t *testing.T) {
	disk, mem, mod := t.TempDir(), memDir(t), module(t)
	noKey := func() ([]byte, error) { return nil, os.ErrPermission }
	c, err := Open(mod, Options{Memory: mem, Disk: disk, Key: noKey})
	if err != nil {
		t.Fatal(err)
	}
	compileAndRun(t, c.Dir(), mod)
	if stored, err := c.Commit(); stored || err == nil {
		t.Errorf("Commit without a key: stored %v, err %v; want an error", stored, err)
	}
	if m, _ := filepath.Glob(filepath.Join(disk, "*")); len(m) != 0 {
		t.Errorf("the disk tier holds %v", m)
	}
	if got, _ := run(t, mem, disk, mod, noKey); got != MemoryHit {
		t.Errorf("the second run in the same VM: %v", got)
	}
	if _, err := Open(mod, Options{Memory: mem, Disk: disk, Key: func() ([]byte, error) { return []byte("short"), nil }}); err != nil {
		t.Fatal(err)
	}
}

// TestMemoryTierMustBeMemory: a memory tier on a disk is refused, and so
// is one another user could write.
func TestMemoryTierMustBeMemory(t *testing.T) {
	if _, err := Open(module(t), Options{Memory: t.TempDir()}); err == nil && !onTmpfs(os.TempDir()) {
		t.Error("a memory tier on a disk was accepted")
	}
	mem := memDir(t)
	if err := os.MkdirAll(mem, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(mem, 0o777)
	if _, err := Open(module(t), Options{Memory: mem}); err == nil || !strings.Contains(err.Error(), "alone") {
		t.Errorf("a world-writable memory tier: %v", err)
	}
}

func onTmpfs(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == 0x01021994
}

// TestEviction: over its budget, the memory tier lets go of the least
// recently used modules, but never of one used in the last minute.
func TestEviction(t *testing.T) {
	mem, disk := memDir(t), t.TempDir()
	mod, other := module(t), otherModule(t)
	run(t, mem, disk, other, keyOf(1))
	c, err := Open(other, Options{Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	otherDir := c.Dir()
	// Used a minute ago: the budget of one byte cannot keep it.
	old := time.Now().Add(-2 * time.Minute)
	os.Chtimes(otherDir, old, old)
	recent, err := Open(mod, Options{Memory: mem, Budget: 1})
	if err != nil {
		t.Fatal(err)
	}
	compileAndRun(t, recent.Dir(), mod)
	recent.Commit()
	if _, err := os.Stat(otherDir); !os.IsNotExist(err) {
		t.Errorf("the least recently used module stayed: %v", err)
	}
	if names, _ := recent.entries(); len(names) != 1 {
		t.Errorf("this run's module was evicted: %v", names)
	}
	// Now the other is used again, and recently: it stays.
	again, _ := Open(other, Options{Memory: mem, Budget: 1})
	compileAndRun(t, again.Dir(), other)
	again.Commit()
	if names, _ := recent.entries(); len(names) != 1 {
		t.Errorf("a module used in the last minute was evicted")
	}
}

// TestMemoryHitLeavesTier: a memory hit's Commit adds nothing and so
// evicts nothing, even with the tier over its budget; the next run that
// adds code brings the tier back under it.
func TestMemoryHitLeavesTier(t *testing.T) {
	mem, disk := memDir(t), t.TempDir()
	mod, other := module(t), otherModule(t)
	run(t, mem, disk, other, keyOf(1))
	run(t, mem, disk, mod, keyOf(1))
	c, err := Open(other, Options{Memory: mem})
	if err != nil {
		t.Fatal(err)
	}
	otherDir := c.Dir()
	old := time.Now().Add(-2 * time.Minute)
	os.Chtimes(otherDir, old, old)
	hit, err := Open(mod, Options{Memory: mem, Budget: 1})
	if err != nil {
		t.Fatal(err)
	}
	if hit.Outcome() != MemoryHit {
		t.Fatalf("outcome %v, want a memory hit", hit.Outcome())
	}
	compileAndRun(t, hit.Dir(), mod)
	if stored, err := hit.Commit(); stored || err != nil {
		t.Errorf("a memory hit's commit: stored %v, %v", stored, err)
	}
	if _, err := os.Stat(otherDir); err != nil {
		t.Errorf("a memory hit's commit evicted another module: %v", err)
	}
	// A run that adds code (another module's, missing from memory) evicts.
	third := bytes.Clone(other)
	third[bytes.Index(third, []byte("Tiny module\n"))] = 'U'
	miss, err := Open(third, Options{Memory: mem, Budget: 1})
	if err != nil {
		t.Fatal(err)
	}
	compileAndRun(t, miss.Dir(), third)
	miss.Commit()
	if _, err := os.Stat(otherDir); !os.IsNotExist(err) {
		t.Errorf("the least recently used module stayed after a run that added code: %v", err)
	}
}

// TestOnlyRootKeepsCode: a launcher of an ordinary user keeps no code,
// since another process of that user could change it between the check
// and wazero's open; and a memory tier whose parent another user could
// change (not root's, not sticky) is refused.
func TestOnlyRootKeepsCode(t *testing.T) {
	euid = func() int { return 1000 }
	_, err := Open(module(t), Options{Memory: memDir(t)})
	euid = os.Geteuid
	if !errors.Is(err, ErrNotRoot) {
		t.Errorf("an ordinary user's launcher: %v, want ErrNotRoot", err)
	}
	mem := memDir(t)
	parent := filepath.Dir(mem)
	if err := os.Chmod(parent, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(module(t), Options{Memory: mem}); err == nil || !strings.Contains(err.Error(), "others may change") {
		t.Errorf("a world-writable parent without the sticky bit: %v", err)
	}
	if err := os.Chmod(parent, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(module(t), Options{Memory: mem}); err != nil {
		t.Errorf("a sticky parent, as /dev/shm is: %v", err)
	}
	if err := os.Chown(parent, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(module(t), Options{Memory: mem}); err == nil {
		t.Error("a parent of another user's was accepted")
	}
	// A memory tier made by someone else as a link to a directory of
	// root's on tmpfs: refused, not followed.
	link := memDir(t)
	target := memDir(t)
	os.MkdirAll(target, 0o700)
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(module(t), Options{Memory: link}); err == nil || !strings.Contains(err.Error(), "is a link") {
		t.Errorf("a memory tier that is a link: %v", err)
	}
}

// TestCompileOptionsKeptApart: code made under other compile options is
// another module's as far as the cache goes: another memory directory,
// and its disk entry does not verify for these options.
func TestCompileOptionsKeptApart(t *testing.T) {
	mod, disk := module(t), t.TempDir()
	run(t, memDir(t), disk, mod, keyOf(1))
	mem := memDir(t)
	c, err := Open(mod, Options{Memory: mem, Disk: disk, Key: keyOf(1), Compile: "compiler;close-on-context-done=true"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Outcome() != Miss {
		t.Errorf("other options found %v", c.Outcome())
	}
	d, err := Open(mod, Options{Memory: mem, Disk: disk, Key: keyOf(1)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Dir() == c.Dir() || d.Outcome() != DiskHit {
		t.Errorf("default options: dir shared %v, outcome %v", d.Dir() == c.Dir(), d.Outcome())
	}
	// The other options' entry, planted as the default's, is refused.
	other := t.TempDir()
	o, _ := Open(mod, Options{Memory: memDir(t), Disk: other, Key: keyOf(1), Compile: "x"})
	compileAndRun(t, o.Dir(), mod)
	o.Commit()
	data, err := os.ReadFile(diskEntry(t, other))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(diskEntry(t, disk), data, 0o600)
	if e, _ := Open(mod, Options{Memory: memDir(t), Disk: disk, Key: keyOf(1)}); e.Outcome() != Refused {
		t.Errorf("another options' entry: %v", e.Outcome())
	}
}

// TestDiskTierThroughALinkIsRefused: the host makes the disk tier, or a
// directory above it, a link to a directory of its choosing; a launcher
// running as root neither reads an entry from there nor writes one.
func TestDiskTierThroughALinkIsRefused(t *testing.T) {
	mod := module(t)
	for _, tc := range []struct{ name, linkAt string }{{"the tier itself", "code"}, {"a directory above it", "cache"}} {
		t.Run(tc.name, func(t *testing.T) {
			base, elsewhere := t.TempDir(), t.TempDir()
			if err := os.Symlink(elsewhere, filepath.Join(base, tc.linkAt)); err != nil {
				t.Fatal(err)
			}
			disk := filepath.Join(base, "code")
			if tc.linkAt == "cache" {
				disk = filepath.Join(base, "cache", "code")
			}
			mem := memDir(t)
			c, err := Open(mod, Options{Memory: mem, Disk: disk, Key: keyOf(1)})
			if err == nil {
				compileAndRun(t, c.Dir(), mod)
				if stored, cerr := c.Commit(); stored || cerr == nil {
					t.Errorf("an entry was stored through the link (%v, %v)", stored, cerr)
				}
			}
			filepath.WalkDir(elsewhere, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					t.Errorf("%s was written through the link", p)
				}
				return nil
			})
		})
	}
}

// BenchmarkEntryCheck: reading a disk entry of 10 MiB of code (a compiled
// hello is 9.7 MB) into the memory tier and checking its tag there, as a
// new VM's first run of a module does. Once per module and VM boot; a
// memory hit checks nothing.
func BenchmarkEntryCheck(b *testing.B) {
	if euid() != 0 {
		b.Skip("the memory tier is kept only by root")
	}
	c := &Cache{digest: [48]byte{1}, modSize: 1 << 20}
	key := bytes.Repeat([]byte{7}, 32)
	code := bytes.Repeat([]byte("compiled code "), (10<<20)/14)
	entry, err := c.seal(strings.Repeat("ab", 32), code, key)
	if err != nil {
		b.Fatal(err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(memDir(b)), "entry-*")
	if err != nil {
		b.Fatal(err)
	}
	defer tmp.Close()
	b.SetBytes(int64(len(code)))
	for b.Loop() {
		tmp.Truncate(0)
		tmp.Seek(0, io.SeekStart)
		h, err := c.read(bytes.NewReader(entry), int64(len(entry)), tmp)
		if err == nil {
			err = c.verifyFile(h, key, tmp)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
