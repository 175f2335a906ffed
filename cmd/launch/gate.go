package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/shim"
)

func doGate(ctx context.Context, e *cliEnv, c command, args []string) int {
	fs := e.newFlagSet(c)
	profile := fs.String("profile", "debug", "the profile: debug, staging or production (each has the same gate)")
	asJSON := fs.Bool("json", false, "print JSON")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
	p, err := profiles.Get(*profile)
	if err != nil {
		return e.fail(err)
	}
	table := shim.Gate()
	if *asJSON {
		type row struct {
			Function string `json:"function"`
			Rule     string `json:"rule"`
			Errno    uint16 `json:"errno,omitempty"`
			Why      string `json:"why"`
		}
		var out []row
		for _, n := range table.Names() {
			r := table[n]
			out = append(out, row{shim.WASIModule + "." + n, r.Action.String(), uint16(r.Errno), r.Why})
		}
		amp := shim.AmpouleFunctions()
		for _, n := range amp.Names() {
			out = append(out, row{shim.AmpouleModule + "." + n, amp[n].Action.String(), 0, amp[n].Why})
		}
		return writeJSON(e, out)
	}
	fmt.Fprintf(e.stdout, "Host-call gate under the %s profile, the same as under every other (%d functions of %s):\n\n", p.Name, len(table), shim.WASIModule)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tRULE\tWHY")
	for _, n := range table.Names() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, table[n], table[n].Why)
	}
	tw.Flush()
	amp := shim.AmpouleFunctions()
	fmt.Fprintf(e.stdout, "\nHost functions of the %s module:\n\n", shim.AmpouleModule)
	tw = tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, n := range amp.Names() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", n, amp[n], amp[n].Why)
	}
	tw.Flush()
	return 0
}
