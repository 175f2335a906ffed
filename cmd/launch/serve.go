package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/ampoule-run/ampoule"
)

func cmdServe(fs *flag.FlagSet) action {
	listen := fs.String("listen", "", "the socket to listen on: unix:PATH")
	maxRuns := fs.Int("max-runs", 0, "runs going at once (default: the number of CPUs)")
	queue := fs.Int("queue", 0, "runs waiting beyond --max-runs before one is refused with E4013 (default: 4 times --max-runs; -1: none)")
	budget := fs.Int64("warm-budget", 0, "MiB of resident memory for idle warm runners (default: 512; -1: keep none)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		return e.serve(ctx, *listen, *maxRuns, *queue, *budget)
	}
}

func (e *cliEnv) serve(ctx context.Context, listen string, maxRuns, queue int, budget int64) int {
	// The server runs staging and production runs too: it is a
	// protected launcher, whatever the profile of its first run.
	if e.protect != nil {
		if err := e.protect(); err != nil {
			return e.fail(err)
		}
	}
	wb := budget
	if wb > 0 {
		wb <<= 20
	}
	s := ampoule.NewServer(ampoule.ServerConfig{MaxRuns: maxRuns, MaxQueue: queue, WarmBudget: wb})
	var path string
	err := s.ServeUnix(ctx, listen, func(p string) {
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
