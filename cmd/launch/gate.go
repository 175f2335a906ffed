package main

import (
	"context"
	"flag"

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
		if *asJSON {
			return writeJSON(e, shim.GateRows())
		}
		shim.WriteGate(e.stdout, p.Name)
		return 0
	}
}
