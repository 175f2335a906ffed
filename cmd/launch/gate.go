package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/shim/audit"
)

func cmdGate(fs *flag.FlagSet) action {
	profile := fs.String("profile", "debug", "the profile: debug, staging or production (each has the same gate)")
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		p, err := profiles.Get(*profile)
		if err != nil {
			return e.fail(err)
		}
		if *asJSON {
			return writeJSON(e, shim.GateRows())
		}
		shim.WriteGate(e.stdout, p.Name)
		return 0
	}
}

// reportAudit prints the runner's system calls, and writes them as JSON if
// asked. Failures are warnings: the run itself is over.
func reportAudit(stderr io.Writer, counts []audit.Count, jsonFile string) {
	audit.WriteCounts(stderr, "launch: audit:", counts, shim.AllowedCalls())
	if jsonFile != "" {
		if err := audit.WriteReportFile(jsonFile, counts); err != nil {
			fmt.Fprintf(stderr, "launch: warning: writing %s: %v\n", jsonFile, err)
		}
	}
}

func cmdAudit(fs *flag.FlagSet) action {
	suggest := fs.String("suggest", "", "the JSON file written by 'launch run --audit-json'")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		rep, err := audit.ReadReportFile(*suggest)
		if err != nil {
			return e.fail(errcode.Errorf(errcode.Usage, "%w", err).WithHint("write the file with: launch run --audit --audit-json FILE BUNDLE"))
		}
		audit.Suggest(rep.Syscalls, shim.AllowedCalls()).WriteTo(e.stdout)
		return 0
	}
}
