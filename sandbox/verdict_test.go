package sandbox

import (
	"crypto/sha512"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestVerdictIsKept: a module that passes inspection leaves a verdict in
// the cache directory, which the next check reads instead of inspecting
// (a verdict planted for a module that would fail is taken: the directory
// is as trusted as the code in it); the memory limit is judged afresh; a
// module that fails leaves none; a verdict that does not decode is
// ignored; another module's bytes name another verdict.
func TestVerdictIsKept(t *testing.T) {
	const mem = 16 << 20
	dir := t.TempDir()
	table := tableModule(mem / tableEntryBytes / 2)
	if err := checkModuleCached(table, nil, mem, dir, ""); err != nil {
		t.Fatal(err)
	}
	name := verdictName(sha512.Sum384(table), "")
	if name == "" {
		t.Fatal("no verdict name: /proc/self/exe unreadable")
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Fatalf("no verdict was kept: %v", err)
	}
	// The limit is the run's: the verdict's shape is judged against it.
	if err := checkModuleCached(table, nil, mem/4, dir, ""); errcode.From(err).Code != errcode.MemoryLimit {
		t.Errorf("a lower limit with the verdict: %v", err)
	}
	// The verdict is what is read: one planted to say "nothing" is taken.
	if err := os.WriteFile(filepath.Join(dir, name), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkModuleCached(table, nil, mem/4, dir, ""); err != nil {
		t.Errorf("the verdict was not used: %v", err)
	}
	// One that does not decode is ignored, and replaced.
	os.WriteFile(filepath.Join(dir, name), []byte(`{`), 0o600)
	if err := checkModuleCached(table, nil, mem/4, dir, ""); errcode.From(err).Code != errcode.MemoryLimit {
		t.Errorf("a broken verdict: %v", err)
	}
	// A module that fails inspection leaves no verdict.
	deep := nestedBlocks(maxNesting + 1)
	if err := checkModuleCached(deep, nil, mem, dir, ""); errcode.From(err).Code != errcode.ModuleTooComplex {
		t.Errorf("too deep: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, verdictName(sha512.Sum384(deep), ""))); !os.IsNotExist(err) {
		t.Errorf("a failed module left a verdict: %v", err)
	}
	if verdictName(sha512.Sum384(deep), "") == name {
		t.Error("two modules name the same verdict")
	}
	// Without a directory nothing is kept and inspection still decides.
	if err := checkModuleCached(deep, nil, mem, "", ""); errcode.From(err).Code != errcode.ModuleTooComplex {
		t.Errorf("without a directory: %v", err)
	}
}

// TestVerdictNamedByTheGivenDigest: a run handed the module's digest (the
// supervisor's, of the bytes it sealed) names the verdict by it, hashing
// nothing itself; the name is the one the module's own SHA-384 gives.
func TestVerdictNamedByTheGivenDigest(t *testing.T) {
	const mem = 16 << 20
	dir := t.TempDir()
	table := tableModule(mem / tableEntryBytes / 2)
	sum := sha512.Sum384(table)
	calls := 0
	digest := func() [48]byte { calls++; return sum }
	if err := checkModuleCached(table, digest, mem, dir, ""); err != nil {
		t.Fatal(err)
	}
	if calls != 1 {
		t.Errorf("the digest was asked for %d times, want 1", calls)
	}
	if _, err := os.Stat(filepath.Join(dir, verdictName(sum, ""))); err != nil {
		t.Fatalf("no verdict under the given digest's name: %v", err)
	}
	// A planted "nothing" verdict under that name is what a lower limit
	// then meets: the name came from the digest given.
	os.WriteFile(filepath.Join(dir, verdictName(sum, "")), []byte(`{}`), 0o600)
	if err := checkModuleCached(table, digest, mem/4, dir, ""); err != nil {
		t.Errorf("the verdict the digest names was not used: %v", err)
	}
}

// TestMapModuleWantsSeals: the runner maps the module only from a memory
// file sealed against change, as the supervisor makes it, since the
// digest it is handed stands for those bytes; a plain file, or a memory
// file left writable, is refused.
func TestMapModuleWantsSeals(t *testing.T) {
	want := []byte("\x00asm\x01\x00\x00\x00")
	f, err := sealedFile(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := mapModule(f)
	if err != nil {
		t.Fatalf("a sealed module: %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("mapped %q, want %q", got, want)
	}
	plain, err := os.Create(filepath.Join(t.TempDir(), "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	plain.Write(want)
	if _, err := mapModule(plain); err == nil {
		t.Error("a plain file was mapped")
	}
	fd, err := unix.MemfdCreate("unsealed", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	open := os.NewFile(uintptr(fd), "unsealed")
	open.Write(want)
	if _, err := unix.FcntlInt(open.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_GROW|unix.F_SEAL_SHRINK); err != nil {
		t.Fatal(err)
	}
	if _, err := mapModule(open); err == nil {
		t.Error("a memory file open to writes was mapped")
	}
}
