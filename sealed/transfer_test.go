package sealed

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestExportImport: Export writes a store's tree (an accepted version's
// too) into an empty directory and leaves the store as it was; Import
// seals a directory into a new store as the run's own; each refuses what
// it must with its code.
func TestExportImport(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "v1.sealed")
	if err := Save(file, teeKeys[m1], m1, tree(), 1<<20); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(file)
	out := filepath.Join(dir, "out")
	o, err := Export(file, teeKeysFor(m2, m1), 1<<20, out)
	if err != nil || o.From == nil || *o.From != m1 {
		t.Fatalf("export as v2 accepting v1: %v, from %v", err, o.From)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Error("export changed the store")
	}
	if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("the export's directory: %v, %v", err, st.Mode())
	}
	back, err := ReadDir(out, 1<<20)
	if err != nil || !reflect.DeepEqual(byPath(back), byPath(tree())) {
		t.Fatalf("the exported tree differs from the store's: %v", err)
	}
	code := func(err error) errcode.Code { return errcode.From(err).Code }
	if _, err := Export(file, teeKeysFor(m3), 1<<20, filepath.Join(dir, "o3")); code(err) != errcode.SealedStoreForeign {
		t.Errorf("export as v3 accepting nothing: %v", err)
	}
	if _, err := Export(file, teeKeysFor(m1), 1<<20, out); code(err) != errcode.OutputExists {
		t.Errorf("export into a non-empty directory: %v", err)
	}
	if _, err := Export(filepath.Join(dir, "none.sealed"), teeKeysFor(m1), 1<<20, filepath.Join(dir, "o4")); code(err) != errcode.Usage {
		t.Errorf("export of no store: %v", err)
	}
	if _, err := Export(filepath.Join(dir, "missing", "x.sealed"), teeKeysFor(m1), 1<<20, filepath.Join(dir, "o5")); code(err) != errcode.SealedDirMissing {
		t.Errorf("export from a missing directory: %v", err)
	}

	v3 := filepath.Join(dir, "v3.sealed")
	if n, err := Import(v3, teeKeysFor(m3), 1<<20, out); err != nil || n != len(tree()) {
		t.Fatalf("import: %d, %v", n, err)
	}
	if o, found, err := teeKeysFor(m3).Load(v3, 1<<20); err != nil || !found || o.From != nil || !reflect.DeepEqual(byPath(o.Entries), byPath(tree())) {
		t.Fatalf("the imported store as v3's own: %v, %v", err, found)
	}
	if _, err := Import(v3, teeKeysFor(m3), 1<<20, out); code(err) != errcode.OutputExists {
		t.Errorf("import over a store: %v", err)
	}
	if _, err := Import(filepath.Join(dir, "small.sealed"), teeKeysFor(m3), 64, out); code(err) != errcode.SealedImportInvalid {
		t.Errorf("import past max_size: %v", err)
	}
	if _, err := Import(filepath.Join(dir, "f.sealed"), teeKeysFor(m3), 1<<20, file); code(err) != errcode.SealedImportInvalid {
		t.Errorf("import of a file, not a directory: %v", err)
	}
}

// byPath is a tree as path -> kind, mode, time and data, whatever its
// order.
func byPath(entries []Entry) map[string]string {
	m := map[string]string{}
	for _, e := range entries {
		m[e.Path] = fmt.Sprintf("%v %v %v %q", e.Kind, e.Mode, e.ModTime.UnixNano(), e.Data)
	}
	return m
}
