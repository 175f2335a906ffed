package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
)

func cmdCache(fs *flag.FlagSet) action {
	dir := fs.String("cache-dir", "", "the cache's directory (default: the one 'launch run' uses, under the user's cache dir)")
	asJSON := fs.Bool("json", false, "info: print JSON")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		if *dir == "" {
			d, err := ampoule.DefaultCacheDir()
			if err != nil {
				return e.fail(errcode.Errorf(errcode.CacheUnavailable, "no user cache directory: %v", err).WithHint("pass --cache-dir DIR"))
			}
			*dir = d
		}
		if in.Sub == "prune" {
			st, err := ampoule.PruneCache(*dir)
			if err != nil {
				return e.fail(err)
			}
			fmt.Fprintf(e.stdout, "removed %d compiled modules (%s) from %s\n", st.Entries, ampoule.SizeText(st.Bytes), st.Dir)
			return 0
		}
		st, err := ampoule.CacheInfo(*dir)
		if err != nil {
			return e.fail(err)
		}
		return e.show(*asJSON, st, st.WriteText)
	}
}
