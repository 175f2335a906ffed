package ampoule_test

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/profiles"
)

// describing are the fields of profiles.Profile that describe a profile
// to people rather than decide anything: printed, never consumed.
var describing = map[string]bool{"Summary": true}

// TestEveryProfileFieldIsConsumed: a profile is policy as data, so every
// field of profiles.Profile must be read by the library (this package or
// another outside cmd/ and profiles itself) where it decides what a run
// may do. A field added that nothing consumes, or one only printed, fails
// here (as gVisor's TestOptionsConfigKey holds its options to a config
// key). Reads are found by the type checker, so a field of another struct
// with the same name does not count.
func TestEveryProfileFieldIsConsumed(t *testing.T) {
	fset := token.NewFileSet()
	imp := exportImporter(t, fset)
	read := map[string][]string{}
	for _, dir := range libraryDirs(t) {
		files := parseDir(t, fset, dir)
		if len(files) == 0 {
			continue
		}
		info := &types.Info{Selections: map[*ast.SelectorExpr]*types.Selection{}}
		conf := types.Config{Importer: imp, Error: func(error) {}}
		conf.Check(dir, fset, files, info)
		for sel, s := range info.Selections {
			if s.Kind() != types.FieldVal {
				continue
			}
			named, ok := types.Unalias(deref(s.Recv())).(*types.Named)
			if !ok || named.Obj().Pkg() == nil || named.Obj().Pkg().Path() != "github.com/ampoule-run/ampoule/profiles" || named.Obj().Name() != "Profile" {
				continue
			}
			read[s.Obj().Name()] = append(read[s.Obj().Name()], fset.Position(sel.Pos()).String())
		}
	}
	var unread []string
	for _, f := range reflect.VisibleFields(reflect.TypeOf(profiles.Profile{})) {
		if !describing[f.Name] && len(read[f.Name]) == 0 {
			unread = append(unread, f.Name)
		}
	}
	sort.Strings(unread)
	if len(unread) > 0 {
		t.Errorf("fields of profiles.Profile that no library code reads: %v; consume each where it decides something, or remove it", unread)
	}
	if len(read) < 5 {
		t.Fatalf("only %d fields read: the type check found too little (%v)", len(read), read)
	}
}

// exportImporter imports packages from the export data the go command
// keeps in its build cache ('go list -export'), which is much faster than
// type-checking every dependency from source.
func exportImporter(t *testing.T, fset *token.FileSet) types.Importer {
	t.Helper()
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, file, ok := strings.Cut(line, "="); ok && file != "" {
			exports[path] = file
		}
	}
	return importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
}

func deref(t types.Type) types.Type {
	if p, ok := t.(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}

// libraryDirs are the module's package directories outside cmd/,
// profiles, examples, benchmarks and test helpers.
func libraryDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		for _, skip := range []string{"cmd", "profiles", "wasm-examples", "bench", "conformance", "internal", "testdata", "docs", ".git"} {
			if path == skip || strings.HasPrefix(path, skip+string(filepath.Separator)) {
				return filepath.SkipDir
			}
		}
		dirs = append(dirs, path)
		return nil
	})
	return dirs
}

func parseDir(t *testing.T, fset *token.FileSet, dir string) []*ast.File {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}
