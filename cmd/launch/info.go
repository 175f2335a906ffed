package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

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
		if !*asJSON {
			fmt.Fprintln(e.stdout, m.Measurement)
			return 0
		}
		return writeJSON(e, m)
	}
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
		if *asJSON {
			type jsonProfile struct {
				profiles.Profile
				Warnings []profiles.Warning `json:"warnings"`
			}
			var out []jsonProfile
			for _, p := range all {
				out = append(out, jsonProfile{p, nonNilWarnings(p.Warnings())})
			}
			return writeJSON(e, out)
		}
		printProfileTable(e.stdout, all)
		for _, p := range all {
			fmt.Fprintf(e.stdout, "\n%s: %s\n", p.Name, p.Summary)
			ws := p.Warnings()
			if len(ws) == 0 {
				fmt.Fprintln(e.stdout, "  no relaxations")
			}
			for _, w := range ws {
				fmt.Fprintf(e.stdout, "  warning %s: %s\n", w.Name, w.Text)
			}
		}
		return 0
	}
}

// printProfileTable prints the profiles side by side, a row per setting.
func printProfileTable(w io.Writer, all []profiles.Profile) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, f func(profiles.Profile) string) {
		cells := []string{label}
		for _, p := range all {
			cells = append(cells, f(p))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	row("", func(p profiles.Profile) string { return p.Name })
	row("host-visible errors", func(p profiles.Profile) string {
		if p.StaticErrors {
			return "code + ref (the host's own input in full)"
		}
		return "full detail"
	})
	row("workload output and logs", func(p profiles.Profile) string {
		if p.PlainLogs {
			return "plain, to terminal"
		}
		return "encrypted to log_recipient"
	})
	row("exit status", func(p profiles.Profile) string {
		if p.PassExitCode {
			return "workload's own"
		}
		return "fixed classes"
	})
	row("backends", func(p profiles.Profile) string { return strings.Join(p.Backends, ",") })
	row("default backend", func(p profiles.Profile) string { return p.DefaultBackend })
	row("TEE debug bit", func(p profiles.Profile) string { return yes(p.AllowTEEDebug) })
	row("seccomp", func(p profiles.Profile) string { return yes(p.Seccomp) })
	row("protected launcher", func(p profiles.Profile) string { return yes(p.Protected) })
	row("bare .wasm", func(p profiles.Profile) string { return yes(p.AllowBareModule) })
	row("--dir/--env/args", func(p profiles.Profile) string { return yes(p.AllowHostOverrides) })
	row("compile cache", func(p profiles.Profile) string {
		if p.DiskCache {
			return "on disk, unauthenticated"
		}
		return "authenticated"
	})
	tw.Flush()
}

func nonNilWarnings(w []profiles.Warning) []profiles.Warning {
	if w == nil {
		return []profiles.Warning{}
	}
	return w
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
		if *asJSON {
			return writeJSON(e, entries)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CODE\tNAME\tCLASS\tEXIT\tTEXT")
		for _, c := range entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", c.Code, c.Name, c.Class, c.ExitStatus, c.Text)
		}
		tw.Flush()
		fmt.Fprintln(e.stdout, "\nUnder debug a workload's own exit status passes through; the statuses above are the launcher's.")
		return 0
	}
}

func cmdVersion(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print JSON")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		v := sandbox.Versions()
		if *asJSON {
			return writeJSON(e, v)
		}
		fmt.Fprintf(e.stdout, "launch %s\n", v.Launch)
		if v.Commit != "" {
			mod := ""
			if v.Modified {
				mod = "+modified"
			}
			fmt.Fprintf(e.stdout, "commit %s%s\n", v.Commit, mod)
		}
		fmt.Fprintf(e.stdout, "wazero %s\n%s\n", v.Wazero, v.Go)
		return 0
	}
}
