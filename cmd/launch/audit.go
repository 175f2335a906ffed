package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/shim/audit"
)

// reportAudit prints the runner's system calls, and writes them as JSON if
// asked. Failures are warnings: the run itself is over.
func reportAudit(stderr io.Writer, counts []audit.Count, jsonFile string) {
	audit.WriteCounts(stderr, "launch: audit:", counts, shim.AllowedCalls())
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
		data, err := regfile.ReadFile(*suggest)
		if err != nil {
			return e.fail(errcode.Errorf(errcode.Usage, "%v", err).WithHint("write the file with: launch run --audit --audit-json FILE BUNDLE"))
		}
		rep, err := audit.DecodeReport(data)
		if err != nil {
			return e.fail(errcode.Errorf(errcode.Usage, "%s: %w", *suggest, err).WithHint("write the file with: launch run --audit --audit-json FILE BUNDLE"))
		}
		audit.Suggest(rep.Syscalls, shim.AllowedCalls()).WriteTo(e.stdout)
		return 0
	}
}
