package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sandbox"
)

func cmdMeasure(fs *flag.FlagSet) action {
	profile := fs.String("profile", "debug", "the profile: debug, staging or production")
	asJSON := fs.Bool("json", false, "print a JSON object with the measurement and its inputs")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		target := in.Pos[0]
		m, err := ampoule.Measure(target, *profile)
		if err != nil {
			return e.fail(err)
		}
		return e.show(*asJSON, m, func(w io.Writer) { fmt.Fprintln(w, m.Measurement) })
	}
}

// show prints v as indented JSON, or else as text writes it.
func (e *cliEnv) show(asJSON bool, v any, text func(io.Writer)) int {
	if asJSON {
		return writeJSON(e, v)
	}
	text(e.stdout)
	return 0
}

func writeJSON(e *cliEnv, v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "writing JSON: %v", err))
	}
	return 0
}

func cmdProfiles(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		all := profiles.All()
		return e.show(*asJSON, profiles.Describe(all), func(w io.Writer) {
			profiles.WriteTable(w, all)
			for _, p := range all {
				p.WriteRelaxations(w)
			}
		})
	}
}

func cmdErrors(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print JSON")
	asMarkdown := fs.Bool("markdown", false, "print the registry as docs/errors.md")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		if *asMarkdown {
			if err := errcode.Markdown(e.stdout); err != nil {
				return e.fail(errcode.Errorf(errcode.Internal, "writing the registry: %w", err))
			}
			return 0
		}
		entries := errcode.Entries()
		return e.show(*asJSON, entries, func(w io.Writer) {
			errcode.WriteTable(w, entries)
			fmt.Fprintln(w, "\nUnder debug a workload's own exit status passes through; the statuses above are the launcher's.")
		})
	}
}

func cmdVersion(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		v := sandbox.Versions()
		return e.show(*asJSON, v, v.WriteText)
	}
}
