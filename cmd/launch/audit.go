package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/shim/audit"
)

// auditReport is what --audit-json writes and 'launch audit' reads.
type auditReport struct {
	Syscalls []audit.Count `json:"syscalls"`
}

// reportAudit prints the runner's system calls, and writes them as JSON if
// asked. Failures are warnings: the run itself is over.
func reportAudit(stderr io.Writer, counts []audit.Count, jsonFile string) {
	allowed := allowedNames()
	fmt.Fprintf(stderr, "launch: audit: %d kinds of system call by the runner after compilation\n", len(counts))
	tw := tabwriter.NewWriter(stderr, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "launch: audit:\tSYSCALL\tCOUNT\tALLOWLIST")
	for _, c := range counts {
		fmt.Fprintf(tw, "launch: audit:\t%s\t%d\t%s\n", c.Name, c.Count, allowed[c.Name])
	}
	tw.Flush()
	if jsonFile != "" {
		b, _ := json.MarshalIndent(auditReport{Syscalls: counts}, "", "  ")
		if err := os.WriteFile(jsonFile, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "launch: warning: writing %s: %v\n", jsonFile, err)
		}
	}
}

// allowedNames maps each system call of the seccomp allowlist to how the
// filter treats it, in the allowlist's own words (shim's Describe); calls
// absent from it map to "".
func allowedNames() map[string]string {
	out := map[string]string{}
	// The runner makes these to install its filter, just before the filter
	// applies; the audit, attached earlier, sees them.
	out["prctl"] = "before the filter (no_new_privs)"
	out["seccomp"] = "before the filter (installs it)"
	list, err := shim.Allowlist()
	if err != nil {
		return out
	}
	for _, s := range list {
		out[s.Name] = s.Describe()
	}
	return out
}

func doAudit(ctx context.Context, e *cliEnv, c command, args []string) int {
	fs := e.newFlagSet(c)
	suggest := fs.String("suggest", "", "the JSON file written by 'launch run --audit-json'")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
	if *suggest == "" {
		return e.fail(errcode.Errorf(errcode.Usage, "audit needs --suggest FILE").WithHint("usage: launch " + c.doc.Usage))
	}
	data, err := regfile.ReadFile(*suggest)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Usage, "%v", err).WithHint("write the file with: launch run --audit --audit-json FILE BUNDLE"))
	}
	var rep auditReport
	if err := json.Unmarshal(data, &rep); err != nil || rep.Syscalls == nil {
		return e.fail(errcode.Errorf(errcode.Usage, "%s is not an audit report: %v", *suggest, err).WithHint("write the file with: launch run --audit --audit-json FILE BUNDLE"))
	}
	allowed := allowedNames()
	seen := map[string]bool{}
	fmt.Fprintln(e.stdout, "// Draft seccomp allowlist from an audited run. Review every NEW row: each")
	fmt.Fprintln(e.stdout, "// needs a reason (Why) before it joins shim/seccomp_amd64.go.")
	var added int
	for _, s := range rep.Syscalls {
		seen[s.Name] = true
		if how := allowed[s.Name]; how != "" {
			fmt.Fprintf(e.stdout, "unix.SYS_%s: {Name: %q, ...}, // %s; %d calls\n", strings.ToUpper(s.Name), s.Name, how, s.Count)
		} else {
			added++
			fmt.Fprintf(e.stdout, "unix.SYS_%s: {Name: %q, Rule: MatchAll{}, Why: \"say who needs it\"}, // NEW: %d calls, refused today\n", strings.ToUpper(s.Name), s.Name, s.Count)
		}
	}
	var unused []string
	for name := range allowed {
		if !seen[name] {
			unused = append(unused, name)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		fmt.Fprintf(e.stdout, "// Allowed but not made by this run: %v\n", unused)
	}
	fmt.Fprintf(e.stdout, "// %d calls made, %d of them new.\n", len(rep.Syscalls), added)
	return 0
}
