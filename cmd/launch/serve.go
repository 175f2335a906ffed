package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/ampoule-run/ampoule"
)

func cmdServe(fs *flag.FlagSet) action {
	var cfg ampoule.ServerConfig
	listen := fs.String("listen", "", "the socket to listen on: unix:PATH")
	fs.IntVar(&cfg.MaxRuns, "max-runs", 0, "runs going at once (default: the number of CPUs)")
	fs.IntVar(&cfg.MaxQueue, "queue", 0, "runs waiting beyond --max-runs before one is refused with E4013 (default: 4 times --max-runs; -1: none)")
	fs.Int64Var(&cfg.WarmBudget, "warm-budget", 0, "MiB of resident memory for idle warm runners (default: 512; -1: keep none)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		// The server runs staging and production runs too: it is a
		// protected launcher, whatever the profile of its first run.
		if e.protect != nil {
			if err := e.protect(); err != nil {
				return e.fail(err)
			}
		}
		if cfg.WarmBudget > 0 {
			cfg.WarmBudget <<= 20
		}
		var path string
		err := ampoule.NewServer(cfg).ServeUnix(ctx, *listen, func(p string) {
			path = p
			if e.drain != nil {
				e.drain()
			}
			fmt.Fprintf(e.stderr, "launch: serving on unix:%s\n", path)
		})
		if err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stderr, "launch: stopped serving on unix:%s\n", path)
		return 0
	}
}
