package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sandbox"
)

func doMeasure(ctx context.Context, e *cliEnv, c command, args []string) int {
	fs := e.newFlagSet(c)
	profile := fs.String("profile", "debug", "the profile: debug, staging or production")
	asJSON := fs.Bool("json", false, "print a JSON object with the measurement and its inputs")
	target, done, code := e.parseOne(c, fs, args, "BUNDLE")
	if done {
		return code
	}
	if _, err := profiles.Get(*profile); err != nil {
		return e.fail(err)
	}
	b, err := loader.Open(target)
	if err != nil {
		return e.fail(err)
	}
	m := loader.Measure(b, *profile)
	if !*asJSON {
		fmt.Fprintln(e.stdout, m)
		return 0
	}
	digest := b.ModuleSHA384()
	out := struct {
		Measurement       string          `json:"measurement"`
		Profile           string          `json:"profile"`
		Name              string          `json:"name"`
		ModuleSHA384      string          `json:"module_sha384"`
		CanonicalManifest json.RawMessage `json:"canonical_manifest"`
		Generated         bool            `json:"generated_manifest"`
		ProfileAllowed    bool            `json:"profile_allowed"`
	}{m.String(), *profile, b.Manifest.Name, hex.EncodeToString(digest[:]), b.Manifest.Canonical(), b.Generated, b.Manifest.AllowsProfile(*profile)}
	return writeJSON(e, out)
}

func writeJSON(e *cliEnv, v any) int {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "writing JSON: %v", err))
	}
	return 0
}

func doProfiles(ctx context.Context, e *cliEnv, c command, args []string) int {
	fs := e.newFlagSet(c)
	asJSON := fs.Bool("json", false, "print JSON")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
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
	row("disk compile cache", func(p profiles.Profile) string { return yes(p.DiskCache) })
	tw.Flush()
}

func nonNilWarnings(w []profiles.Warning) []profiles.Warning {
	if w == nil {
		return []profiles.Warning{}
	}
	return w
}

func doErrors(ctx context.Context, e *cliEnv, c command, args []string) int {
	fs := e.newFlagSet(c)
	asJSON := fs.Bool("json", false, "print JSON")
	asMarkdown := fs.Bool("markdown", false, "print the registry as docs/errors.md")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
	if *asMarkdown {
		if err := errcode.Markdown(e.stdout); err != nil {
			return e.fail(errcode.Errorf(errcode.Internal, "writing the registry: %w", err))
		}
		return 0
	}
	if *asJSON {
		type jsonCode struct {
			Code       string `json:"code"`
			Number     int    `json:"number"`
			Name       string `json:"name"`
			Class      string `json:"class"`
			ExitStatus int    `json:"exit_status"`
			Text       string `json:"text"`
			Hint       string `json:"hint,omitempty"`
		}
		var out []jsonCode
		for _, c := range errcode.All() {
			out = append(out, jsonCode{fmt.Sprintf("E%04d", int(c)), int(c), c.Name(), c.Class().String(), c.Class().ExitStatus(), c.Text(), c.Hint()})
		}
		return writeJSON(e, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tNAME\tCLASS\tEXIT\tTEXT")
	for _, c := range errcode.All() {
		fmt.Fprintf(tw, "E%04d\t%s\t%s\t%d\t%s\n", int(c), c.Name(), c.Class(), c.Class().ExitStatus(), c.Text())
	}
	tw.Flush()
	fmt.Fprintln(e.stdout, "\nUnder debug a workload's own exit status passes through; the statuses above are the launcher's.")
	return 0
}

func doVersion(ctx context.Context, e *cliEnv, c command, args []string) int {
	fs := e.newFlagSet(c)
	asJSON := fs.Bool("json", false, "print JSON")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
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
