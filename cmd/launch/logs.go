package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/ampoule-run/ampoule"
)

func cmdKeygen(fs *flag.FlagSet) action {
	out := fs.String("o", "", "write the identity to this file")
	recipientOf := fs.String("y", "", "print the recipient of this identity file (- for stdin), making nothing")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		if *recipientOf != "" {
			id, err := ampoule.ReadIdentity(*recipientOf, e.stdin)
			if err != nil {
				return e.fail(err)
			}
			fmt.Fprintln(e.stdout, id.Recipient())
			return 0
		}
		file, recipient, err := ampoule.NewIdentityFile(time.Now())
		if err != nil {
			return e.fail(err)
		}
		if *out == "" {
			e.stdout.Write(file)
			return 0
		}
		if err := ampoule.WriteNewFile(*out, file, 0o600, "keygen never overwrites a key; choose another file"); err != nil {
			return e.fail(err)
		}
		fmt.Fprintln(e.stdout, recipient)
		return 0
	}
}

func cmdLogs(fs *flag.FlagSet) action {
	var f ampoule.LogFiles
	fs.StringVar(&f.Identity, "identity", "", "the tenant's identity file (from 'launch keygen')")
	fs.BoolVar(&f.JSON, "json", false, "print each record as a JSON line")
	fs.BoolVar(&f.Follow, "follow", false, "wait for a live log to grow, until its end record")
	fs.StringVar(&f.Policy, "policy", "", "judge the log's evidence against this policy (TOML), as 'launch verify' does")
	fs.StringVar(&f.Nonce, "nonce", "", "the nonce the run's evidence must carry, in hex (the one the tenant's broker issued)")
	fs.StringVar(&f.Ref, "ref", "", "the reference the host showed for the run: the log must be that run's")
	fs.StringVar(&f.TDXCollateral, "tdx-collateral", "", "with --policy: Intel's collateral for a TDX run's quote ('launch collateral fetch')")
	quiet := quietFlag(fs)
	fs.StringVar(&f.EnvelopeOut, "envelope-out", "", "write the run's evidence envelope to this new file, as 'launch attest' prints it, once the log is verified")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		e.quiet = *quiet
		if len(in.Pos) == 1 {
			f.Log = in.Pos[0]
		}
		d, err := ampoule.DecryptLog(ctx, f, e.stdin, e.stdout, e.stderr)
		if err != nil {
			return e.fail(err)
		}
		d.WriteSummary(e.info(e.stderr))
		for _, w := range d.Reader.Binding.Warnings {
			fmt.Fprintf(e.stderr, "launch: warning: %s\n", w)
		}
		return 0
	}
}
