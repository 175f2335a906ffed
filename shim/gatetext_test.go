package shim

import (
	"strings"
	"testing"
)

// TestWriteGate: every function of the gate and of the ampoule module has
// its row, under the profile named.
func TestWriteGate(t *testing.T) {
	var b strings.Builder
	WriteGate(&b, "staging")
	out := b.String()
	if !strings.HasPrefix(out, "Host-call gate under the staging profile") {
		t.Errorf("first line: %.80q", out)
	}
	for _, n := range append(Gate().Names(), AmpouleFunctions().Names()...) {
		if !strings.Contains(out, "\n"+n+" ") {
			t.Errorf("no row for %s", n)
		}
	}
}
