package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/vm"
)

// vmRun boots the VM, or under --dry-run prints its command line and the
// measured inputs; the exit status is the guest's.
func (e *cliEnv) vmRun(ctx context.Context, c vm.RunConfig, logOut string) int {
	if logOut != "" && !c.DryRun {
		f, err := os.OpenFile(logOut, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return e.fail(errcode.Errorf(errcode.LogSinkUnavailable, "%v", err).Host())
		}
		defer f.Close()
		c.Log = f
	}
	res, err := vm.Run(ctx, c)
	if err != nil {
		return e.fail(err)
	}
	if c.DryRun {
		fmt.Fprint(e.stdout, res.Guest.Digests())
		if res.Guest.Launch != nil {
			fmt.Fprint(e.stdout, res.Guest.Launch.Text())
		}
		fmt.Fprintln(e.stdout, shellQuote(res.Command))
		fmt.Fprintln(e.stdout, "# the guest's files above were in a temporary directory, now removed: 'launch vm build -o DIR' keeps them")
	}
	return res.Status
}

// shellQuote is args as one line a shell reads back as args.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>(){}*?[]#~!") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
