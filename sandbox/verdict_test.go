package sandbox

import (
	"os"
	"path/filepath"
	"testing"

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
	if err := checkModuleCached(table, mem, dir); err != nil {
		t.Fatal(err)
	}
	name := verdictName(table)
	if name == "" {
		t.Fatal("no verdict name: /proc/self/exe unreadable")
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
		t.Fatalf("no verdict was kept: %v", err)
	}
	// The limit is the run's: the verdict's shape is judged against it.
	if err := checkModuleCached(table, mem/4, dir); errcode.From(err).Code != errcode.MemoryLimit {
		t.Errorf("a lower limit with the verdict: %v", err)
	}
	// The verdict is what is read: one planted to say "nothing" is taken.
	if err := os.WriteFile(filepath.Join(dir, name), []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkModuleCached(table, mem/4, dir); err != nil {
		t.Errorf("the verdict was not used: %v", err)
	}
	// One that does not decode is ignored, and replaced.
	os.WriteFile(filepath.Join(dir, name), []byte(`{`), 0o600)
	if err := checkModuleCached(table, mem/4, dir); errcode.From(err).Code != errcode.MemoryLimit {
		t.Errorf("a broken verdict: %v", err)
	}
	// A module that fails inspection leaves no verdict.
	deep := nestedBlocks(maxNesting + 1)
	if err := checkModuleCached(deep, mem, dir); errcode.From(err).Code != errcode.ModuleTooComplex {
		t.Errorf("too deep: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, verdictName(deep))); !os.IsNotExist(err) {
		t.Errorf("a failed module left a verdict: %v", err)
	}
	if verdictName(deep) == name {
		t.Error("two modules name the same verdict")
	}
	// Without a directory nothing is kept and inspection still decides.
	if err := checkModuleCached(deep, mem, ""); errcode.From(err).Code != errcode.ModuleTooComplex {
		t.Errorf("without a directory: %v", err)
	}
}
