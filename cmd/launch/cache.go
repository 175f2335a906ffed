package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
)

func cmdCache(fs *flag.FlagSet) action {
	dir := fs.String("cache-dir", "", "the cache's directory (default: the one 'launch run' uses, under the user's cache dir)")
	asJSON := fs.Bool("json", false, "info: print JSON")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		return cacheAction(e, in.Sub, dir, *asJSON)
	}
}

func cacheAction(e *cliEnv, sub string, dir *string, asJSON bool) int {
	if *dir == "" {
		d, err := ampoule.DefaultCacheDir()
		if err != nil {
			return e.fail(errcode.Errorf(errcode.CacheUnavailable, "no user cache directory: %v", err).WithHint("pass --cache-dir DIR"))
		}
		*dir = d
	}
	if sub == "prune" {
		st, err := ampoule.PruneCache(*dir)
		if err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "removed %d compiled modules (%s) from %s\n", st.Entries, sizeString(st.Bytes), st.Dir)
		return 0
	}
	st, err := ampoule.CacheInfo(*dir)
	if err != nil {
		return e.fail(err)
	}
	if asJSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", b)
		return 0
	}
	fmt.Fprintf(e.stdout, "path:    %s\n", st.Dir)
	if !st.Exists {
		fmt.Fprintf(e.stdout, "entries: 0 (no cache yet)\n")
		return 0
	}
	fmt.Fprintf(e.stdout, "entries: %d\nsize:    %s\n", st.Entries, sizeString(st.Bytes))
	for _, v := range st.Versions {
		fmt.Fprintf(e.stdout, "version: %s\n", v)
	}
	return 0
}

// sizeString writes n bytes for a person: "0 bytes", "3.2 MiB".
func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
