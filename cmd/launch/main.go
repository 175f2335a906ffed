// Command launch measures and runs Ampoule bundles.
//
//	launch run [--profile P] [--backend sim] [--dir HOST::GUEST]... [--env K=V]... BUNDLE|MODULE.wasm [-- ARGS...]
//	launch measure [--profile P] [--json] BUNDLE
//	launch profiles [--json]
//	launch errors [--json]
//	launch version
//
// Run 'launch help' for more.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/vm/guest"
)

// forcedExitDelay is how long a signalled run may take to unwind before the
// process exits regardless.
const forcedExitDelay = 900 * time.Millisecond

func main() {
	// The child that 'launch run' starts to run the workload.
	ampoule.RunnerMain()
	// The first process of a VM 'launch vm build' made.
	if guest.IsInit() {
		guest.Main()
	}
	// SIGINT and SIGTERM stop a run; a protected run adds the signals that
	// would make the Go runtime dump its stacks (ampoule.Protect).
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(context.Background())
	go func() {
		s := <-sigs
		cancel(fmt.Errorf("%v", s))
		if draining.Load() {
			// A server drains for as long as its runs take.
			<-sigs
			ampoule.Exit(130)
		}
		// A second signal, or a run slow to unwind, ends the process now,
		// its sealed workspace removed first.
		select {
		case <-sigs:
		case <-time.After(forcedExitDelay):
		}
		ampoule.Exit(130)
	}()
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr,
		protect: func() error { return ampoule.Protect(sigs) }}
	ampoule.Exit(env.run(ctx, os.Args[1:]))
}
