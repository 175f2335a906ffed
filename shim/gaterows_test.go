package shim

import (
	"strings"
	"testing"
)

// TestGateRows: a row per gated function of either module, in the table's
// order, each with its rule and reason; a denied call's row carries its
// errno, no other does.
func TestGateRows(t *testing.T) {
	rows, table, amp := GateRows(), Gate(), AmpouleFunctions()
	if len(rows) != len(table)+len(amp) {
		t.Fatalf("%d rows for %d+%d functions", len(rows), len(table), len(amp))
	}
	for i, n := range table.Names() {
		r := rows[i]
		if r.Function != WASIModule+"."+n || r.Rule != table[n].Action.String() || r.Why != table[n].Why || (r.Errno != 0) != (table[n].Action == Deny) {
			t.Errorf("%s: %+v", n, r)
		}
	}
	for _, r := range rows[len(table):] {
		if !strings.HasPrefix(r.Function, AmpouleModule+".") || r.Errno != 0 {
			t.Errorf("%+v", r)
		}
	}
}
