package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"strings"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/textform"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func cmdAttest(fs *flag.FlagSet) action {
	nonceHex := fs.String("nonce", "", "the verifier's nonce, in hex (1 to 64 bytes)")
	backendName := fs.String("backend", "", "the TEE backend: auto, sim, snp or tdx (default: sim under debug, auto otherwise)")
	profileName := fs.String("profile", "debug", "the profile the bundle is measured under")
	simKey := fs.String("sim-key", "", "the simulator's key file (default: the user's config dir)")
	quiet := quietFlag(fs)
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		target := in.Pos[0]
		e.quiet = *quiet
		nonce, err := hex.DecodeString(*nonceHex)
		if err != nil || len(nonce) == 0 || len(nonce) > 64 {
			return e.fail(errcode.Errorf(errcode.Usage, "--nonce must be 1 to 64 bytes in hex").WithHint("the verifier chooses the nonce; for a try: --nonce $(openssl rand -hex 32)"))
		}
		env, err := ampoule.Attest(ctx, target, ampoule.AttestConfig{Profile: *profileName, Backend: *backendName, SimKey: *simKey,
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

// unpinnedWarning is what a command using a policy that accepts the
// simulator without pinning its keys says.
const unpinnedWarning = "launch: warning: the policy accepts the simulator but pins no simulator key (sim_keys): anyone's simulator evidence would pass, so its verdict is at best a warning and a broker refuses to serve it; pin this machine's key ('launch platform info' prints it) or set sim_keys = \"any\"\n"

func cmdVerify(fs *flag.FlagSet) action {
	policyFile := fs.String("policy", "", "the policy file (TOML)")
	nonceHex := fs.String("nonce", "", "the nonce the verifier issued, in hex; checked when given")
	at := fs.String("at", "", "judge freshness at this time (RFC 3339) instead of now")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	snpReport := fs.String("snp-report", "", "a raw SEV-SNP attestation report to check by hand")
	vcek := fs.String("vcek", "", "with --snp-report: the VCEK certificate (DER or PEM; a VLEK is recognised too)")
	vlek := fs.String("vlek", "", "with --snp-report: the VLEK certificate (DER or PEM), for reports a cloud provider's VLEK signed")
	chain := fs.String("chain", "", "with --snp-report: the product's ASK or ASVK and ARK (PEM), as AMD's KDS serves them")
	product := fs.String("product", "Milan", "with --snp-report: the processor line (Milan, Genoa, Turin)")
	tdxQuote := fs.String("tdx-quote", "", "a raw TDX quote to check by hand")
	tdxCollateral := fs.String("tdx-collateral", "", "Intel's collateral for the TDX quote ('launch collateral fetch'), to judge its TCB status offline")
	earToken := fs.String("ear", "", "an EAR token (or a file holding one) to check against --jwks")
	jwks := fs.String("jwks", "", "with --ear: the broker's JSON Web Key Set, a file or an http(s) URL")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		pos, rest := in.Pos, in.Rest
		now, err := parseAt(*at)
		if err != nil {
			return e.fail(err)
		}
		if *snpReport == "" && (*vcek != "" || *vlek != "" || *chain != "") {
			return e.fail(errcode.Errorf(errcode.Usage, "--vcek, --vlek and --chain go with --snp-report FILE").WithHint("usage: launch " + c.doc.Usage))
		}
		if *earToken != "" {
			return verifyEAR(ctx, e, *earToken, *jwks, now, *asJSON)
		}
		if *snpReport != "" {
			if err := attest.CheckProduct(*product); err != nil {
				return e.fail(err)
			}
			files := attest.SNPFiles{Report: *snpReport, VCEK: *vcek, VLEK: *vlek, Chain: *chain}
			check, err := attest.VerifySNPFiles(files, snp.Options{Product: *product, Now: now})
			return e.printCheck(check, attest.Hinted(err), *asJSON)
		}
		var coll *tdx.Collateral
		if *tdxCollateral != "" {
			if coll, err = ampoule.ReadTDXCollateral(*tdxCollateral); err != nil {
				return e.fail(attest.InputError("--tdx-collateral", err))
			}
		}
		if *tdxQuote != "" {
			check, err := attest.VerifyTDXFile(*tdxQuote, tdx.Options{Now: now, Collateral: coll})
			err = attest.Hinted(err)
			if err == nil && check.TCBStatus != "UpToDate" {
				fmt.Fprintln(e.stderr, "launch: hint: the TCB status is judged with Intel's collateral: pass --tdx-collateral FILE ('launch collateral fetch')")
			}
			return e.printCheck(check, err, *asJSON)
		}
		if *policyFile == "" || len(pos) != 1 || len(rest) > 0 {
			return e.fail(errcode.Errorf(errcode.Usage, "verify needs --policy and one EVIDENCE file").WithHint("usage: launch " + c.doc.Usage))
		}
		opts := attest.Options{Now: now, TDXCollateral: coll}
		if *nonceHex != "" {
			if opts.Nonce, err = hex.DecodeString(*nonceHex); err != nil {
				return e.fail(errcode.Errorf(errcode.Usage, "--nonce is not hex").WithHint("pass the nonce the verifier issued, in hex, as 'launch attest --nonce' took it"))
			}
		}
		return verifyEnvelope(e, *policyFile, pos[0], opts, *asJSON)
	}
}

// verifyEnvelope judges the evidence envelope in file against the policy
// in policyFile, prints the verdict and exits 0 only when affirming.
func verifyEnvelope(e *cliEnv, policyFile, file string, opts attest.Options, asJSON bool) int {
	pol, err := ampoule.ReadPolicy(policyFile)
	if err != nil {
		return e.fail(attest.InputError("--policy", err))
	}
	if pol.SimUnpinned() {
		fmt.Fprint(e.stderr, unpinnedWarning)
	}
	r, err := ampoule.VerifyEvidenceFile(file, pol, opts)
	if err != nil {
		return e.fail(attest.InputError("EVIDENCE", err))
	}
	if asJSON {
		writeJSON(e, r)
	} else {
		r.WriteText(e.stdout)
	}
	if r.Status != attest.Affirming {
		return e.fail(errcode.Errorf(errcode.EvidenceRefused, "%s: %s", r.Status, strings.Join(r.Reasons, "; ")))
	}
	return 0
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
		if *from == "" {
			return e.fail(errcode.Errorf(errcode.Usage, "policy new needs --from BUNDLE").WithHint("usage: launch " + c.doc.Usage))
		}
		t, err := ampoule.PolicyTemplate(*from, ampoule.PolicyConfig{Profiles: profs, Backends: backends, AllowInsecure: *allowInsecure, SimKey: *simKey, VM: *vmDir})
		if err != nil {
			return e.fail(err)
		}
		var out bytes.Buffer
		if err := attest.WriteTemplate(&out, t); err != nil {
			return e.fail(errcode.Errorf(errcode.Internal, "the policy written does not parse: %v", err))
		}
		e.stdout.Write(out.Bytes())
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
		if *asJSON {
			return writeJSON(e, info)
		}
		info.WriteText(e.stdout)
		return 0
	}
}

// printCheck prints a by-hand check's outcome, its fields as text or as
// JSON, and exits 0; or its error.
func (e *cliEnv) printCheck(check any, err error, asJSON bool) int {
	switch {
	case err != nil:
		return e.fail(err)
	case asJSON:
		return writeJSON(e, check)
	}
	textform.Write(e.stdout, check)
	return 0
}

func cmdCollateral(fs *flag.FlagSet) action {
	quote := fs.String("tdx-quote", "", "the raw TDX quote (version 4)")
	pcsURL := fs.String("pcs-url", "", "a PCS mirror serving Intel's paths (default: "+tdx.PCS+")")
	out := fs.String("o", "", "write the document to this new file (default: stdout)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		if *quote == "" {
			return e.fail(errcode.Errorf(errcode.Usage, "collateral fetch needs --tdx-quote FILE").WithHint("usage: launch " + c.doc.Usage))
		}
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
