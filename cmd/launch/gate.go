package main

import (
	"context"
	"flag"
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
		return e.show(*asJSON, shim.GateRows(), func(w io.Writer) { shim.WriteGate(w, p.Name) })
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
