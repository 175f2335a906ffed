package ampoule

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/sandbox"
)

// realCache fills dir with what wazero's own compile cache writes for a
// module.
func realCache(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	if _, err := rt.CompileModule(ctx, testwasm.Assemble(testwasm.Spec{})); err != nil {
		t.Fatal(err)
	}
	rt.Close(ctx)
	cache.Close(ctx)
}

// TestCacheInfoAndPrune: a compile cache wazero wrote is counted and
// emptied; a missing one is empty; the directory itself stays.
func TestCacheInfoAndPrune(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	if st, err := CacheInfo(dir); err != nil || st.Exists || st.Entries != 0 {
		t.Fatalf("a missing cache: %+v, %v", st, err)
	}
	realCache(t, dir)
	st, err := CacheInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Exists || st.Entries < 1 || st.Bytes <= 0 || len(st.Versions) != 1 || !strings.HasPrefix(st.Versions[0], "wazero-") {
		t.Fatalf("info: %+v", st)
	}
	pruned, err := PruneCache(dir)
	if err != nil || pruned.Entries != st.Entries || pruned.Bytes != st.Bytes {
		t.Fatalf("prune: %+v, %v; info said %+v", pruned, err, st)
	}
	if left, err := os.ReadDir(dir); err != nil || len(left) != 0 {
		t.Errorf("after prune the directory holds %v (%v)", left, err)
	}
	if st, err := CacheInfo(dir); err != nil || st.Entries != 0 {
		t.Errorf("after prune: %+v, %v", st, err)
	}
}

// TestPruneRefusesAForeignDirectory: a directory holding anything a compile
// cache does not is refused with E1046 and nothing in it is removed, not
// even the compiled code beside the stranger.
func TestPruneRefusesAForeignDirectory(t *testing.T) {
	for name, plant := range map[string]func(t *testing.T, dir string){
		"a file at the top": func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)
		},
		"a project's directory": func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "src"), 0o755)
		},
		"a file among the compiled code": func(t *testing.T, dir string) {
			vs, _ := filepath.Glob(filepath.Join(dir, "wazero-*"))
			os.WriteFile(filepath.Join(vs[0], "notes.txt"), []byte("mine"), 0o644)
		},
		"a link in place of a version directory": func(t *testing.T, dir string) {
			os.Symlink(t.TempDir(), filepath.Join(dir, "wazero-v9-amd64-linux"))
		},
		"a link among the compiled code": func(t *testing.T, dir string) {
			vs, _ := filepath.Glob(filepath.Join(dir, "wazero-*"))
			os.Symlink("/etc/passwd", filepath.Join(vs[0], strings.Repeat("ab", 32)))
		},
	} {
		dir := t.TempDir()
		realCache(t, dir)
		plant(t, dir)
		before, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
		tops, _ := os.ReadDir(dir)
		for _, f := range []func(string) (CacheStats, error){CacheInfo, PruneCache} {
			if _, err := f(dir); errcode.From(err).Code != errcode.CacheForeign {
				t.Errorf("%s: %v; want E%d", name, err, errcode.CacheForeign)
			}
		}
		after, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
		if tops2, _ := os.ReadDir(dir); len(after) != len(before) || len(tops2) != len(tops) {
			t.Errorf("%s: prune removed files: %v, then %v", name, before, after)
		}
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if _, err := PruneCache(file); errcode.From(err).Code != errcode.CacheForeign {
		t.Errorf("a file: %v", err)
	}
}

// TestPruneTakesTheLaunchersOwnFiles: beside wazero's code, a cache holds
// the launcher's kept inspections (inspected-KEY), its marks of compiled
// modules (compiled-KEY) and, as the disk tier of the authenticated cache,
// MAC'd entries (KEY.code): all are its content, counted and pruned; a
// name only like theirs is foreign.
func TestPruneTakesTheLaunchersOwnFiles(t *testing.T) {
	dir := t.TempDir()
	realCache(t, dir)
	verdict := filepath.Join(dir, "inspected-"+strings.Repeat("0a", 32))
	entry := filepath.Join(dir, strings.Repeat("1b", 16)+".code")
	os.WriteFile(verdict, []byte(`{}`), 0o600)
	os.WriteFile(entry, []byte("entry"), 0o600)
	marks, _ := filepath.Glob(filepath.Join(dir, "compiled-*"))
	sandbox.MarkCompiled(dir, [48]byte{1})
	mark, _ := filepath.Glob(filepath.Join(dir, "compiled-*"))
	if len(mark) != len(marks)+1 {
		t.Fatalf("no mark written: %v", mark)
	}
	before, err := CacheInfo(dir)
	if err != nil {
		t.Fatal(err)
	}
	pruned, err := PruneCache(dir)
	if err != nil || pruned.Entries != before.Entries || pruned.Entries < 2 {
		t.Fatalf("prune: %+v, %v", pruned, err)
	}
	for _, f := range append([]string{verdict, entry}, mark...) {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s stayed: %v", f, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "inspected-mine"), nil, 0o600)
	if _, err := PruneCache(dir); errcode.From(err).Code != errcode.CacheForeign {
		t.Errorf("a file only named like a verdict: %v", err)
	}
}
