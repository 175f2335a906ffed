package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/shim/audit"
)

// reportAudit prints the runner's system calls, and writes them as JSON if
// asked. Failures are warnings: the run itself is over.
func reportAudit(stderr io.Writer, counts []audit.Count, jsonFile string) {
	allowed := shim.AllowedCalls()
	fmt.Fprintf(stderr, "launch: audit: %d kinds of system call by the runner after compilation\n", len(counts))
	tw := tabwriter.NewWriter(stderr, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "launch: audit:\tSYSCALL\tCOUNT\tALLOWLIST")
	for _, c := range counts {
		fmt.Fprintf(tw, "launch: audit:\t%s\t%d\t%s\n", c.Name, c.Count, allowed[c.Name])
	}
	tw.Flush()
	if jsonFile != "" {
		b, _ := json.MarshalIndent(audit.Report{Syscalls: counts}, "", "  ")
		if err := os.WriteFile(jsonFile, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "launch: warning: writing %s: %v\n", jsonFile, err)
		}
	}
}

func cmdAudit(fs *flag.FlagSet) action {
	suggest := fs.String("suggest", "", "the JSON file written by 'launch run --audit-json'")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		if *suggest == "" {
			return e.fail(errcode.Errorf(errcode.Usage, "audit needs --suggest FILE").WithHint("usage: launch " + c.doc.Usage))
		}
		data, err := regfile.ReadFile(*suggest)
		if err != nil {
			return e.fail(errcode.Errorf(errcode.Usage, "%v", err).WithHint("write the file with: launch run --audit --audit-json FILE BUNDLE"))
		}
		rep, err := audit.DecodeReport(data)
		if err != nil {
			return e.fail(errcode.Errorf(errcode.Usage, "%s: %w", *suggest, err).WithHint("write the file with: launch run --audit --audit-json FILE BUNDLE"))
		}
		d := audit.Suggest(rep.Syscalls, shim.AllowedCalls())
		fmt.Fprintln(e.stdout, "// Draft seccomp allowlist from an audited run. Review every NEW row: each")
		fmt.Fprintln(e.stdout, "// needs a reason (Why) before it joins shim/seccomp_amd64.go.")
		for _, r := range d.Rows {
			if r.How != "" {
				fmt.Fprintf(e.stdout, "unix.SYS_%s: {Name: %q, ...}, // %s; %d calls\n", strings.ToUpper(r.Name), r.Name, r.How, r.Count.Count)
			} else {
				fmt.Fprintf(e.stdout, "unix.SYS_%s: {Name: %q, Rule: MatchAll{}, Why: \"say who needs it\"}, // NEW: %d calls, refused today\n", strings.ToUpper(r.Name), r.Name, r.Count.Count)
			}
		}
		if len(d.Unused) > 0 {
			fmt.Fprintf(e.stdout, "// Allowed but not made by this run: %v\n", d.Unused)
		}
		fmt.Fprintf(e.stdout, "// %d calls made, %d of them new.\n", len(d.Rows), d.New)
		return 0
	}
}
