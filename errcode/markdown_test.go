package errcode

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMarkdownIsTheDoc keeps docs/errors.md equal to the registry.
func TestMarkdownIsTheDoc(t *testing.T) {
	var want bytes.Buffer
	if err := Markdown(&want); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(moduleRoot(t), "docs", "errors.md"))
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("docs/errors.md is out of date (%v); run 'make docs'", err)
	}
}

// TestMarkdownListsTheRegistry: every class and every registered code has
// its row, in numeric order, and each row has its five cells.
func TestMarkdownListsTheRegistry(t *testing.T) {
	var b bytes.Buffer
	if err := Markdown(&b); err != nil {
		t.Fatal(err)
	}
	doc := b.String()
	for _, c := range Classes() {
		if row := "| " + c.String() + " | "; !strings.Contains(doc, row) {
			t.Errorf("no row for class %v", c)
		}
	}
	last := -1
	for _, c := range All() {
		row := "| " + strings.Split(c.String(), " ")[0] + " | `" + c.Name() + "` | " + c.Class().String() + " | "
		i := strings.Index(doc, row)
		if i < 0 {
			t.Errorf("no row for %v", c)
			continue
		}
		if i < last {
			t.Errorf("%v is out of numeric order", c)
		}
		last = i
		line := doc[i : i+strings.IndexByte(doc[i:], '\n')]
		if n := strings.Count(strings.ReplaceAll(line, "\\|", ""), "|"); n != 6 {
			t.Errorf("%v: row has %d cell borders, want 6: %s", c, n, line)
		}
	}
	if cell("a|b") != "a\\|b" {
		t.Errorf("cell(%q) = %q", "a|b", cell("a|b"))
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestMarkdownReportsWriteErrors: a writer's error is returned, not dropped.
func TestMarkdownReportsWriteErrors(t *testing.T) {
	if err := Markdown(failingWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Markdown to a failing writer: %v", err)
	}
}
