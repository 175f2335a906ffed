package shim

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// GateRow is one host function's rule as tools list it: the function
// (module.name), its action, the errno a denied call returns, and why.
type GateRow struct {
	Function string `json:"function"`
	Rule     string `json:"rule"`
	Errno    uint16 `json:"errno,omitempty"`
	Why      string `json:"why"`
}

// GateRows is the whole gate: every WASI preview 1 function's rule, then
// the ampoule module's functions', each in name order.
func GateRows() []GateRow {
	var out []GateRow
	table := Gate()
	for _, n := range table.Names() {
		r := table[n]
		out = append(out, GateRow{WASIModule + "." + n, r.Action.String(), uint16(r.Errno), r.Why})
	}
	amp := AmpouleFunctions()
	for _, n := range amp.Names() {
		out = append(out, GateRow{AmpouleModule + "." + n, amp[n].Action.String(), 0, amp[n].Why})
	}
	return out
}

// WriteGate writes the gate as a table for a person, as launch gate
// prints it: every WASI function with its rule and why, then the
// ampoule module's host functions. profile names the profile asked
// about; the gate is the same under each.
func WriteGate(w io.Writer, profile string) {
	table := Gate()
	fmt.Fprintf(w, "Host-call gate under the %s profile, the same as under every other (%d functions of %s):\n\n", profile, len(table), WASIModule)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tRULE\tWHY")
	for _, n := range table.Names() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, table[n], table[n].Why)
	}
	tw.Flush()
	amp := AmpouleFunctions()
	fmt.Fprintf(w, "\nHost functions of the %s module:\n\n", AmpouleModule)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, n := range amp.Names() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, amp[n], amp[n].Why)
	}
	tw.Flush()
}
