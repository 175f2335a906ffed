package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/shim"
)

func cmdGate(fs *flag.FlagSet) action {
	profile := fs.String("profile", "debug", "the profile: debug, staging or production (each has the same gate)")
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		p, err := profiles.Get(*profile)
		if err != nil {
			return e.fail(err)
		}
		table := shim.Gate()
		if *asJSON {
			return writeJSON(e, shim.GateRows())
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
}
