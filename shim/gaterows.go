package shim

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
