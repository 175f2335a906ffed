package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
)

func cacheCommand() command {
	return command{
		name:    "cache",
		summary: "show or empty the compile cache",
		usage:   "cache info [--cache-dir DIR] [--json]\n       launch cache prune [--cache-dir DIR]",
		help: `
Under debug a run keeps the code wazero compiles in a cache on disk, so a
second run of the same module starts at once (staging and production
compile in memory). cache info prints the cache's directory, how many
compiled modules it holds and their size; cache prune removes them all.
Both refuse a directory holding anything a compile cache does not
(E1046): prune never removes files from a directory named by mistake.

Examples:
  launch cache info
  launch cache prune --cache-dir /tmp/ampoule-cache`,
		run: doCache,
	}
}

func doCache(ctx context.Context, e *cliEnv, args []string) int {
	c := cacheCommand()
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		printCommandHelp(e.stdout, c)
		return 0
	}
	if len(args) == 0 || (args[0] != "info" && args[0] != "prune") {
		return e.fail(errcode.Errorf(errcode.Usage, "cache takes the subcommand info or prune").WithHint("usage: launch " + c.usage))
	}
	sub, args := args[0], args[1:]
	fs := e.newFlagSet(c)
	dir := fs.String("cache-dir", "", "the cache's directory (default: the one 'launch run' uses, under the user's cache dir)")
	asJSON := fs.Bool("json", false, "info: print JSON")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
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
	if *asJSON {
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
