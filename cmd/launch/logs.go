package main

import (
	"context"
	"flag"
	"fmt"
	"io"
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
	identity := fs.String("identity", "", "the tenant's identity file (from 'launch keygen')")
	asJSON := fs.Bool("json", false, "print each record as a JSON line")
	follow := fs.Bool("follow", false, "wait for a live log to grow, until its end record")
	policyFile := fs.String("policy", "", "judge the log's evidence against this policy (TOML), as 'launch verify' does")
	nonceHex := fs.String("nonce", "", "the nonce the run's evidence must carry, in hex (the one the tenant's broker issued)")
	wantRef := fs.String("ref", "", "the reference the host showed for the run: the log must be that run's")
	tdxCollateral := fs.String("tdx-collateral", "", "with --policy: Intel's collateral for a TDX run's quote ('launch collateral fetch')")
	quiet := quietFlag(fs)
	envelopeOut := fs.String("envelope-out", "", "write the run's evidence envelope to this new file, as 'launch attest' prints it, once the log is verified")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		pos := in.Pos
		e.quiet = *quiet
		check, err := ampoule.ReadLogCheck(*policyFile, *tdxCollateral, *nonceHex, *wantRef)
		if err != nil {
			return e.fail(err)
		}
		// The log may come on stdin: the identity never does.
		id, err := ampoule.ReadIdentity(*identity, nil)
		if err != nil {
			return e.fail(err)
		}
		var file string
		if len(pos) == 1 {
			file = pos[0]
		}
		f, err := ampoule.OpenLogFile(file, e.stdin)
		if err != nil {
			return e.fail(err)
		}
		defer f.Close()
		var log io.Reader = f
		if *follow {
			log = ampoule.Follow(ctx, log)
		}
		r, err := ampoule.OpenLog(log, id, check)
		if err != nil {
			return e.fail(err)
		}
		n, err := r.Print(e.stdout, e.stderr, *asJSON, *follow)
		if err != nil {
			return e.fail(err)
		}
		if *envelopeOut != "" {
			if err := ampoule.WriteEnvelope(*envelopeOut, r.Binding.Envelope); err != nil {
				return e.fail(err)
			}
		}
		r.WriteSummary(e.info(e.stderr), check, n)
		for _, w := range r.Binding.Warnings {
			fmt.Fprintf(e.stderr, "launch: warning: %s\n", w)
		}
		return 0
	}
}
