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

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/vm/guest"
)

func main() {
	// The child that 'launch run' starts to run the workload.
	ampoule.RunnerMain()
	// The first process of a VM 'launch vm build' made.
	if guest.IsInit() {
		guest.Main()
	}
	// SIGINT and SIGTERM stop a run; a protected run adds the signals that
	// would make the Go runtime dump its stacks (ampoule.Protect).
	ctx, stop := ampoule.StopSignals(context.Background())
	env := &cliEnv{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, drain: stop.Drain}
	env.protect = func() error {
		err := stop.Protect()
		// A protected process's descriptor 2 is /dev/null, for the Go
		// runtime's own output; launch's lines go to os.Stderr's new one.
		env.stderr = os.Stderr
		return err
	}
	ampoule.Exit(env.run(ctx, os.Args[1:]))
}
