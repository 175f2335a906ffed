package errcode

import "testing"

// TestEntries: an entry per registered code, in order, each saying what
// the code's own methods say.
func TestEntries(t *testing.T) {
	all, entries := All(), Entries()
	if len(entries) != len(all) || len(all) == 0 {
		t.Fatalf("%d entries for %d codes", len(entries), len(all))
	}
	for i, c := range all {
		e := entries[i]
		if e.Number != int(c) || e.Code != c.String()[:5] || e.Name != c.Name() || e.Class != c.Class().String() ||
			e.ExitStatus != c.Class().ExitStatus() || e.Text != c.Text() || e.Hint != c.Hint() {
			t.Errorf("%v: %+v", c, e)
		}
	}
}
