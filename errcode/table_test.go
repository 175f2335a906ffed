package errcode

import (
	"strings"
	"testing"
)

// TestWriteTable: a header and a row per entry, each with its code, name,
// class and exit status.
func TestWriteTable(t *testing.T) {
	var b strings.Builder
	entries := Entries()
	WriteTable(&b, entries)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != len(entries)+1 || strings.Fields(lines[0])[0] != "CODE" {
		t.Fatalf("%d lines for %d entries:\n%s", len(lines), len(entries), b.String())
	}
	for i, e := range entries {
		f := strings.Fields(lines[i+1])
		if f[0] != e.Code || f[1] != e.Name || f[2] != e.Class {
			t.Errorf("row %q for %+v", lines[i+1], e)
		}
	}
}
