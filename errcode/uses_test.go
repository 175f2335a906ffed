package errcode

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const importPath = "github.com/ampoule-run/ampoule/errcode"

// moduleRoot is the module's root, the parent of errcode's directory (the
// tests run there). errcode's tests cannot use internal/testwasm, which
// imports errcode.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !strings.HasPrefix(string(b), "module "+strings.TrimSuffix(importPath, "/errcode")+"\n") {
		t.Fatalf("%s is not the module's root: %v", root, err)
	}
	return root
}

// declaredCodes parses errcode.go and returns every constant of type Code
// with the number written beside it.
func declaredCodes(t *testing.T) map[string]Code {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errcode.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]Code{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			v := s.(*ast.ValueSpec)
			if id, ok := v.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			if len(v.Names) != 1 || len(v.Values) != 1 {
				t.Fatalf("%v: declare one code per line, with its number", v.Names)
			}
			lit, ok := v.Values[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.INT {
				t.Fatalf("%s: its number is not written out", v.Names[0].Name)
			}
			n, err := strconv.Atoi(lit.Value)
			if err != nil {
				t.Fatalf("%s: %v", v.Names[0].Name, err)
			}
			consts[v.Names[0].Name] = Code(n)
		}
	}
	if len(consts) < 50 {
		t.Fatalf("only %d Code constants found in errcode.go", len(consts))
	}
	return consts
}

// TestConstantsAreTheRegistry: every Code constant is registered, every
// registered code has a constant, and no two constants share a number.
func TestConstantsAreTheRegistry(t *testing.T) {
	consts := declaredCodes(t)
	byNumber := map[Code]string{}
	for name, c := range consts {
		if prev, ok := byNumber[c]; ok {
			t.Errorf("%s and %s are both E%04d", prev, name, c)
		}
		byNumber[c] = name
		if !c.Registered() {
			t.Errorf("%s (E%04d) is declared but not in the registry", name, c)
		}
	}
	for _, e := range registry {
		if _, ok := byNumber[e.code]; !ok {
			t.Errorf("E%04d %s is registered but has no constant", e.code, e.name)
		}
	}
}

// codeUses parses every non-test .go file of the module outside errcode
// (and outside testdata) and returns, for each name selected from the errcode
// package, where it is used. A file that imports errcode with a dot or a
// blank name fails the test, since its uses could not be told apart.
func codeUses(t *testing.T, root string) map[string][]string {
	t.Helper()
	uses := map[string][]string{}
	files := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor" || rel == "errcode") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil && p != root {
				return filepath.SkipDir // another module
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		local := ""
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); path == importPath {
				local = "errcode"
				if imp.Name != nil {
					local = imp.Name.Name
				}
			}
		}
		switch local {
		case "":
			return nil
		case ".", "_":
			t.Errorf("%s imports errcode as %q", rel, local)
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == local {
					pos := fset.Position(sel.Pos())
					uses[sel.Sel.Name] = append(uses[sel.Sel.Name], rel+":"+strconv.Itoa(pos.Line))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("only %d Go files parsed under %s", files, root)
	}
	return uses
}

// TestEveryCodeIsReturned: each registered code is used by the module's
// own code somewhere outside errcode and its tests, so no code is listed in
// docs/errors.md that nothing can return. A code whose situation is gone is
// retired (see retired), never left registered.
func TestEveryCodeIsReturned(t *testing.T) {
	consts := declaredCodes(t)
	uses := codeUses(t, moduleRoot(t))
	var unused []string
	for name, c := range consts {
		if len(uses[name]) == 0 {
			unused = append(unused, c.String()+" ("+name+")")
		}
	}
	sort.Strings(unused)
	for _, u := range unused {
		t.Errorf("%s is registered, but no code outside errcode and the tests uses it: return it where its situation arises, or retire it", u)
	}
}
