package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func cmdAttest(fs *flag.FlagSet) action {
	nonceHex := fs.String("nonce", "", "the verifier's nonce, in hex (1 to 64 bytes)")
	var t teeFlags
	t.define(fs)
	quiet := quietFlag(fs)
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		target := in.Pos[0]
		e.quiet = *quiet
		nonce, err := ampoule.ParseNonce(*nonceHex)
		if err != nil {
			return e.fail(err)
		}
		env, err := ampoule.Attest(ctx, target, ampoule.AttestConfig{Profile: t.profile, Backend: t.backend, SimKey: t.simKey,
			TEE: e.tee, Platform: e.platform, Nonce: nonce, Warnings: e.stderr})
		if err != nil {
			return e.fail(err)
		}
		out, err := env.Encode()
		if err != nil {
			return e.fail(errcode.Errorf(errcode.Internal, "%v", err))
		}
		if env.Insecure {
			fmt.Fprint(e.stderr, simWarning)
			if len(env.Collateral) == 2 {
				fmt.Fprintf(e.info(e.stderr), "launch: the simulator's key is %s (a policy pins it in sim_keys)\n", hex.EncodeToString(env.Collateral[1]))
			}
		}
		fmt.Fprintf(e.stdout, "%s\n", out)
		return 0
	}
}

func cmdVerify(fs *flag.FlagSet) action {
	var vin ampoule.VerifyInputs
	fs.StringVar(&vin.Policy, "policy", "", "the policy file (TOML)")
	nonceHex := fs.String("nonce", "", "the nonce the verifier issued, in hex; checked when given")
	at := fs.String("at", "", "judge freshness at this time (RFC 3339) instead of now")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	fs.StringVar(&vin.SNP.Report, "snp-report", "", "a raw SEV-SNP attestation report to check by hand")
	fs.StringVar(&vin.SNP.VCEK, "vcek", "", "with --snp-report: the VCEK certificate (DER or PEM; a VLEK is recognised too)")
	fs.StringVar(&vin.SNP.VLEK, "vlek", "", "with --snp-report: the VLEK certificate (DER or PEM), for reports a cloud provider's VLEK signed")
	fs.StringVar(&vin.SNP.Chain, "chain", "", "with --snp-report: the product's ASK or ASVK and ARK (PEM), as AMD's KDS serves them")
	fs.StringVar(&vin.Product, "product", "Milan", "with --snp-report: the processor line (Milan, Genoa, Turin)")
	fs.StringVar(&vin.TDXQuote, "tdx-quote", "", "a raw TDX quote to check by hand")
	fs.StringVar(&vin.TDXCollateral, "tdx-collateral", "", "Intel's collateral for the TDX quote ('launch collateral fetch'), to judge its TCB status offline")
	earToken := fs.String("ear", "", "an EAR token (or a file holding one) to check against --jwks")
	jwks := fs.String("jwks", "", "with --ear: the broker's JSON Web Key Set, a file or an http(s) URL")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		now, err := parseAt(*at)
		if err != nil {
			return e.fail(err)
		}
		if *earToken != "" {
			// An EAR token (or a file holding one) against the key set in
			// --jwks: its claims, and 0 only when valid and affirming.
			c, err := ampoule.VerifyEAR(ctx, *earToken, *jwks, now)
			if c != nil {
				e.show(*asJSON, c.Report(), c.WriteText)
			}
			if err != nil {
				return e.fail(err)
			}
			return 0
		}
		vin.Options.Now = now
		if len(in.Pos) == 1 {
			vin.Envelope = in.Pos[0]
		}
		if *nonceHex != "" {
			if vin.Options.Nonce, err = ampoule.ParseNonce(*nonceHex); err != nil {
				return e.fail(errcode.From(err).WithHint("pass the nonce the verifier issued, in hex, as 'launch attest --nonce' took it"))
			}
		}
		v, err := ampoule.Verify(vin)
		return e.printVerification(v, err, *asJSON)
	}
}

// printVerification prints a check's warnings and hints, then what it
// found as text or JSON (a by-hand check that failed, only why); it exits
// 0 only when the check passed.
func (e *cliEnv) printVerification(v ampoule.Verification, err error, asJSON bool) int {
	for _, w := range v.Warnings {
		fmt.Fprint(e.stderr, warningLine(w))
	}
	for _, h := range v.Hints {
		fmt.Fprintf(e.stderr, "launch: hint: %s\n", h)
	}
	if v.Result == nil && err != nil {
		return e.fail(err)
	}
	status := e.show(asJSON, v.Found(), v.WriteText)
	if err != nil {
		return e.fail(err)
	}
	return status
}

func cmdPolicy(fs *flag.FlagSet) action {
	from := fs.String("from", "", "the bundle to take reference measurements from")
	var profs, backends stringList
	fs.Var(&profs, "profile", "a profile to accept (repeatable; default production)")
	fs.Var(&backends, "backend", "a backend to accept: sev-snp, tdx or sim (repeatable; default sev-snp and tdx)")
	allowInsecure := fs.Bool("allow-insecure", false, "accept the insecure simulator")
	simKey := fs.String("sim-key", "", "with --backend sim: the simulator key file whose key the policy pins (default: the user's config dir)")
	vmDir := fs.String("vm", "", "a guest directory 'launch vm build --firmware' wrote: pin its launch measurement and init-data")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		t, err := ampoule.PolicyTemplate(*from, ampoule.PolicyConfig{Profiles: profs, Backends: backends, AllowInsecure: *allowInsecure, SimKey: *simKey, VM: *vmDir})
		if err != nil {
			return e.fail(err)
		}
		// WriteTemplate writes nothing unless the whole policy reads back.
		if err := attest.WriteTemplate(e.stdout, t); err != nil {
			return e.fail(errcode.Errorf(errcode.Internal, "the policy written does not parse: %v", err))
		}
		return 0
	}
}

func cmdPlatform(fs *flag.FlagSet) action {
	asJSON := fs.Bool("json", false, "print JSON")
	simKey := fs.String("sim-key", "", "the simulator's key file (default: the user's config dir)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		info, err := ampoule.Platform(*simKey)
		if err != nil {
			return e.fail(err)
		}
		return e.show(*asJSON, info, info.WriteText)
	}
}

func cmdCollateral(fs *flag.FlagSet) action {
	quote := fs.String("tdx-quote", "", "the raw TDX quote (version 4)")
	pcsURL := fs.String("pcs-url", "", "a PCS mirror serving Intel's paths (default: "+tdx.PCS+")")
	out := fs.String("o", "", "write the document to this new file (default: stdout)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		data, err := ampoule.FetchTDXCollateral(*quote, *pcsURL)
		if err != nil {
			return e.fail(err)
		}
		if *out == "" {
			e.stdout.Write(data)
			return 0
		}
		if err := ampoule.WriteNewFile(*out, data, 0o644, "-o never overwrites a file; choose another"); err != nil {
			return e.fail(err)
		}
		return 0
	}
}
