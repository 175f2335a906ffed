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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ampoule-run/ampoule/runtime"
)

// forcedExitDelay is how long a signalled run may take to unwind before the
// process exits regardless.
const forcedExitDelay = 900 * time.Millisecond

func main() {
	if len(os.Args) > 1 && os.Args[1] == runtime.RunnerArg {
		// The child that 'launch run' starts to run the workload.
		os.Exit(runtime.RunChild())
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		// A second signal now kills the process the default way.
		stop()
		time.Sleep(forcedExitDelay)
		os.Exit(130)
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
