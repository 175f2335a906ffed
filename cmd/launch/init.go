package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/ampoule-run/ampoule/scaffold"
)

func cmdInit(fs *flag.FlagSet) action {
	recipient := fs.String("log-recipient", "", "the tenant's log key (alog1..., from 'launch keygen'), written into the manifest")
	quiet := quietFlag(fs)
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		e.quiet = *quiet
		dir := in.Pos[0]
		name := filepath.Base(filepath.Clean(dir))
		if err := scaffold.Write(dir, name, scaffold.Options{LogRecipient: *recipient}); err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.info(e.stdout), "made the bundle %s in %s; build and run it with:\n  cd %s && GOOS=wasip1 GOARCH=wasm go build -o module.wasm . && launch run .\n",
			name, dir, dir)
		return 0
	}
}
