package main

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestThin keeps launch what its package doc says it is, flags and
// printing over the library: its non-test Go code stays under 1,200
// lines and no function in it runs over 60. Work that would push it over
// belongs in the package whose job it is.
func TestThin(t *testing.T) {
	const maxLines, maxFunc = 1200, 60
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	total, fset := 0, token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		total += bytes.Count(src, []byte("\n"))
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
			if n > maxFunc {
				t.Errorf("%s: %s is %d lines, over %d: move its work into the library", name, fn.Name.Name, n, maxFunc)
			}
		}
	}
	if total >= maxLines {
		t.Errorf("launch's non-test code is %d lines, not under %d: move work into the library", total, maxLines)
	}
	if total < 100 {
		t.Errorf("counted only %d lines: the test did not find launch's sources", total)
	}
}
