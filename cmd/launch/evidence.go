package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sealed"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func attestCommand() command {
	return command{
		name:    "attest",
		summary: "produce evidence binding a bundle's measurement to a nonce",
		usage:   "attest --nonce HEX [--backend B] [--profile P] [--sim-key FILE] BUNDLE",
		help: `
Attest measures the bundle under the profile, makes a fresh runtime key
(P-256, as a broker encrypts secrets to), binds measurement, key and the
verifier's nonce into the TEE's report data, and prints the evidence
envelope as JSON for 'launch verify' or a broker. On an SEV-SNP guest it
takes an extended report through /dev/sev-guest, on a TDX guest a quote
through configfs-tsm or /dev/tdx_guest; the simulator's evidence says it
is insecure, and its key is kept in the user's config directory unless
--sim-key names another file (attest prints the key, for a policy's
sim_keys).

Example:
  launch attest --nonce $(openssl rand -hex 32) --profile staging wasm-examples/hello > evidence.json`,
		run: doAttest,
	}
}

func doAttest(ctx context.Context, e *cliEnv, args []string) int {
	c := attestCommand()
	fs := e.newFlagSet(c)
	nonceHex := fs.String("nonce", "", "the verifier's nonce, in hex (1 to 64 bytes)")
	backendName := fs.String("backend", "", "the TEE backend: auto, sim, snp or tdx (default: sim under debug, auto otherwise)")
	profileName := fs.String("profile", "debug", "the profile the bundle is measured under")
	simKey := fs.String("sim-key", "", "the simulator's key file (default: the user's config dir)")
	e.quietFlag(fs)
	target, done, code := e.parseOne(c, fs, args, "BUNDLE")
	if done {
		return code
	}
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

// pathExists is the platform probe's view of the file system.
func pathExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// unpinnedWarning is what a command using a policy that accepts the
// simulator without pinning its keys says.
const unpinnedWarning = "launch: warning: the policy accepts the simulator but pins no simulator key (sim_keys): anyone's simulator evidence would pass, so its verdict is at best a warning and a broker refuses to serve it; pin this machine's key ('launch platform info' prints it) or set sim_keys = \"any\"\n"

func verifyCommand() command {
	return command{
		name:    "verify",
		summary: "check evidence against a policy",
		usage:   "verify --policy POLICY.toml [--nonce HEX] [--tdx-collateral FILE] [--at RFC3339] [--json] EVIDENCE.json\n       launch verify --snp-report FILE --vcek FILE|--vlek FILE [--chain FILE] [--product Milan|Genoa|Turin] [--at RFC3339] [--json]\n       launch verify --tdx-quote FILE [--tdx-collateral FILE] [--at RFC3339] [--json]",
		help: `
Verify checks an evidence envelope against a tenant's policy: the
signature over the evidence, that its report data binds the measurement,
runtime key and nonce, that the measurement is a reference value, that the
profile and backend are accepted, and that the evidence is fresh. It prints
the verdict (affirming, warning or contraindicated) with its reasons and
exits 0 only when affirming. SEV-SNP and TDX evidence carries no time of
its own: without --nonce its freshness cannot be judged, and the verdict
is a warning. --at judges old evidence at a fixed time. Simulator
evidence under a policy that pins no simulator key (sim_keys) is a
warning too: anyone can make a simulator key.

With --snp-report, verify checks a raw SEV-SNP attestation report by hand,
as operators do with snpguest: its signature by the VCEK certificate
(--vcek), or on a cloud provider's machines (AWS) by the VLEK (--vlek; a
VLEK given as --vcek is recognised by its certificate), and that
certificate's chain to the AMD roots built into launch, offline; it prints
the report's claims and exits 0 only when the chain holds. --chain FILE
takes the product's chain as AMD's KDS publishes it (the ASK or ASVK and
the ARK, PEM, from /vcek/v1/PRODUCT/cert_chain or
/vlek/v1/PRODUCT/cert_chain): its ARK must be AMD's own, built into
launch, or the chain is refused. --tdx-quote does the same for a TDX
quote (version 4): its signature and the PCK chain it carries to the
Intel root built into launch (version 4, and version 5 from TDX 1.5
modules). TCB status needs
Intel's collateral (version 4 only): --tdx-collateral FILE (from
'launch collateral fetch') judges it offline too, with --tdx-quote or with
a policy, and the TCB must then be up to date.

Examples:
  launch verify --policy policy.toml --nonce $NONCE evidence.json
  launch verify --snp-report report.bin --vcek vcek.der --at 2026-01-01T00:00:00Z
  launch verify --snp-report report.bin --vlek vlek.der --chain cert_chain.pem
  launch verify --tdx-quote quote.dat --tdx-collateral collateral.json`,
		run: doVerify,
	}
}

func doVerify(ctx context.Context, e *cliEnv, args []string) int {
	c := verifyCommand()
	fs := e.newFlagSet(c)
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
	pos, rest, err := e.parse(c, fs, args)
	if err == errHelp {
		return 0
	}
	if err != nil {
		return e.fail(err)
	}
	now, err := parseAt(*at)
	if err != nil {
		return e.fail(err)
	}
	if *snpReport == "" && (*vcek != "" || *vlek != "" || *chain != "") {
		return e.fail(errcode.Errorf(errcode.Usage, "--vcek, --vlek and --chain go with --snp-report FILE").WithHint("usage: launch " + c.usage))
	}
	if *snpReport != "" {
		return verifySNP(e, snpFiles{report: *snpReport, vcek: *vcek, vlek: *vlek, chain: *chain}, *product, now, *asJSON, nil)
	}
	var coll *tdx.Collateral
	if *tdxCollateral != "" {
		if coll, err = readCollateral(*tdxCollateral); err != nil {
			return e.fail(inputError("--tdx-collateral", err))
		}
	}
	if *tdxQuote != "" {
		return verifyTDX(e, *tdxQuote, now, coll, *asJSON)
	}
	if *policyFile == "" || len(pos) != 1 || len(rest) > 0 {
		return e.fail(errcode.Errorf(errcode.Usage, "verify needs --policy and one EVIDENCE file").WithHint("usage: launch " + c.usage))
	}
	opts := attest.Options{Now: now, TDXCollateral: coll}
	if *nonceHex != "" {
		if opts.Nonce, err = hex.DecodeString(*nonceHex); err != nil {
			return e.fail(errcode.Errorf(errcode.Usage, "--nonce is not hex").WithHint("pass the nonce the verifier issued, in hex, as 'launch attest --nonce' took it"))
		}
	}
	return verifyEnvelope(e, *policyFile, pos[0], opts, *asJSON)
}

// verifyEnvelope judges the evidence envelope in file against the policy
// in policyFile, prints the verdict and exits 0 only when affirming.
func verifyEnvelope(e *cliEnv, policyFile, file string, opts attest.Options, asJSON bool) int {
	pol, err := readPolicy(policyFile)
	if err != nil {
		return e.fail(inputError("--policy", err))
	}
	if pol.SimUnpinned() {
		fmt.Fprint(e.stderr, unpinnedWarning)
	}
	edata, err := regfile.ReadFile(file)
	if err != nil {
		return e.fail(inputError("EVIDENCE", errcode.Errorf(errcode.EvidenceMalformed, "%v", err)))
	}
	env, err := tee.DecodeEnvelope(edata)
	if err != nil {
		return e.fail(inputError("EVIDENCE", errcode.Errorf(errcode.EvidenceMalformed, "%s: %v", file, err)))
	}
	r := attest.Verify(env, pol, opts)
	if asJSON {
		writeJSON(e, r)
	} else {
		fmt.Fprintf(e.stdout, "%s: %s evidence, profile %s, measurement %s\n", r.Status, r.Kind, r.Profile, r.Measurement)
		for _, reason := range r.Reasons {
			fmt.Fprintf(e.stdout, "  - %s\n", reason)
		}
	}
	if r.Status != attest.Affirming {
		return e.fail(errcode.Errorf(errcode.EvidenceRefused, "%s: %s", r.Status, strings.Join(r.Reasons, "; ")))
	}
	return 0
}

func policyCommand() command {
	return command{
		name:    "policy",
		summary: "write a starter verification policy for a bundle",
		usage:   "policy new --from BUNDLE [--profile P]... [--backend B]... [--allow-insecure [--sim-key FILE]]",
		help: `
Policy new prints a starter policy, as a tenant would write it: the
bundle's reference measurement under each profile named (production if
none), the backends accepted (sev-snp and tdx if none), and strict
defaults, each line commented. The simulator is accepted only with
--allow-insecure, and then only this machine's simulator key (the one
--sim-key names, or the user's; 'launch platform info' prints it) is
pinned in sim_keys: add other machines' keys to accept their runs.

Example:
  launch policy new --from wasm-examples/hello --profile staging --backend sim --allow-insecure > policy.toml`,
		run: doPolicy,
	}
}

func doPolicy(ctx context.Context, e *cliEnv, args []string) int {
	c := policyCommand()
	args, done, code := e.subcommand(c, args, "new")
	if done {
		return code
	}
	fs := e.newFlagSet(c)
	from := fs.String("from", "", "the bundle to take reference measurements from")
	var profs, backends stringList
	fs.Var(&profs, "profile", "a profile to accept (repeatable; default production)")
	fs.Var(&backends, "backend", "a backend to accept: sev-snp, tdx or sim (repeatable; default sev-snp and tdx)")
	allowInsecure := fs.Bool("allow-insecure", false, "accept the insecure simulator")
	simKey := fs.String("sim-key", "", "with --backend sim: the simulator key file whose key the policy pins (default: the user's config dir)")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
	if *from == "" {
		return e.fail(errcode.Errorf(errcode.Usage, "policy new needs --from BUNDLE").WithHint("usage: launch " + c.usage))
	}
	t, err := policyTemplate(*from, profs, backends, *allowInsecure, *simKey)
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

// policyTemplate is the starter policy for the bundle at from: its
// measurement under each profile (production if none), the backends
// (sev-snp and tdx if none; "snp" as 'launch run' names it), and this
// machine's simulator key pinned where the simulator is accepted.
func policyTemplate(from string, profs, backends []string, allowInsecure bool, simKey string) (attest.Template, error) {
	if len(profs) == 0 {
		profs = []string{"production"}
	}
	if len(backends) == 0 {
		backends = []string{tee.KindSNP, tee.KindTDX}
	}
	t := attest.Template{Profiles: profs, AllowInsecure: allowInsecure}
	for _, name := range backends {
		kind, ok := tee.ParseKind(name)
		if !ok {
			return t, errcode.Errorf(errcode.Usage, "--backend %q is not sev-snp, tdx or sim", name)
		}
		if kind == tee.KindSim && !allowInsecure {
			return t, errcode.Errorf(errcode.Usage, "--backend sim needs --allow-insecure").WithHint("the simulator protects nothing; say so explicitly")
		}
		t.Backends = append(t.Backends, kind)
	}
	b, err := loader.Open(from)
	if err != nil {
		return t, err
	}
	t.Bundle, t.Version = b.Manifest.Name, b.Manifest.Version
	for _, name := range profs {
		p, err := profiles.Get(name)
		if err != nil {
			return t, err
		}
		if !b.Manifest.AllowsProfile(p.Name) {
			return t, errcode.Errorf(errcode.ProfileNotAllowed, "%s does not allow the %s profile", b.Source, p.Name)
		}
		t.Measurements = append(t.Measurements, attest.ProfileMeasurement{Profile: p.Name, Measurement: loader.Measure(b, p.Name).String()})
	}
	switch {
	case simKey != "" && !slices.Contains(t.Backends, tee.KindSim):
		return t, errcode.Errorf(errcode.Usage, "--sim-key names the simulator key to pin, and the policy does not accept the simulator").WithHint("add --backend sim --allow-insecure, or drop --sim-key")
	case slices.Contains(t.Backends, tee.KindSim):
		be, err := ampoule.OpenBackend(tee.KindSim, simKey)
		if err != nil {
			return t, err
		}
		t.SimPin = hex.EncodeToString(be.(*sim.Backend).PublicKey())
	}
	return t, nil
}

func platformCommand() command {
	return command{
		name:    "platform",
		summary: "say which TEE this machine offers",
		usage:   "platform info [--sim-key FILE] [--json]",
		help: `
Platform info looks for the attestation devices of SEV-SNP
(/dev/sev-guest), TDX (/dev/tdx_guest) and configfs-tsm
(/sys/kernel/config/tsm/report), says which TEE this machine is a guest
of, and what is missing; and this machine's simulator key (the one
--sim-key names, or the user's), which a policy accepting the simulator
pins in sim_keys.

Example:
  launch platform info`,
		run: doPlatform,
	}
}

func doPlatform(ctx context.Context, e *cliEnv, args []string) int {
	c := platformCommand()
	args, done, code := e.subcommand(c, args, "info")
	if done {
		return code
	}
	fs := e.newFlagSet(c)
	asJSON := fs.Bool("json", false, "print JSON")
	simKey := fs.String("sim-key", "", "the simulator's key file (default: the user's config dir)")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
	plat := tee.Probe(pathExists)
	// The simulator's key, if this machine has made one (it is made by
	// the first simulator run, attest or policy new, not here).
	simPub := ""
	path := *simKey
	if path == "" {
		path, _ = ampoule.DefaultSimKey()
	}
	if path != "" && pathExists(path) {
		be, err := ampoule.OpenBackend(tee.KindSim, path)
		if err != nil {
			return e.fail(err)
		}
		simPub = hex.EncodeToString(be.(*sim.Backend).PublicKey())
	}
	if *asJSON {
		return writeJSON(e, map[string]any{"tee": plat.Kind(), "sev_guest": plat.SEVGuest, "tdx_guest": plat.TDXGuest, "configfs_tsm": plat.ConfigfsTSM,
			"configfs_rtmrs": plat.ConfigfsRTMRs, "sealed_workspace": workspaceBase(), "sim_key": simPub})
	}
	printPlatform(e.stdout, plat, simPub)
	return 0
}

// printPlatform says what the platform offers, and what it lacks.
func printPlatform(w io.Writer, plat tee.Platform, simPub string) {
	show := func(label, path string) {
		if path == "" {
			path = "missing"
		}
		fmt.Fprintf(w, "  %-14s %s\n", label, path)
	}
	fmt.Fprintln(w, "Attestation devices:")
	show("sev-guest", plat.SEVGuest)
	show("tdx_guest", plat.TDXGuest)
	show("configfs-tsm", plat.ConfigfsTSM)
	show("rtmrs", plat.ConfigfsRTMRs)
	fmt.Fprintln(w, "Sealed mounts:")
	show("workspace", workspaceBase())
	fmt.Fprintln(w, "Simulator (insecure):")
	if simPub == "" {
		simPub = "none yet (the first simulator run, attest or 'policy new --backend sim' makes it)"
	}
	show("key", simPub)
	switch plat.Kind() {
	case "":
		fmt.Fprintln(w, "\nThis machine is not a confidential VM guest: production cannot run here.")
		fmt.Fprintln(w, "Run inside an SEV-SNP or TDX guest, or use --profile debug or staging with --backend sim (insecure).")
	default:
		fmt.Fprintf(w, "\nThis machine is a %s guest: --backend auto (or %s) attests through it.\n", plat.Kind(), plat.Kind())
	}
	if plat.Kind() == "tdx" && plat.ConfigfsRTMRs == "" {
		fmt.Fprintf(w, "This kernel offers no RTMR extension (%s): runs are bound by report data only,\nand a policy with tdx_require_rtmr refuses their evidence. Kernels with configfs-tsm RTMR support offer it.\n", tee.ConfigfsRTMRs)
	}
	if plat.Kind() == "tdx" {
		fmt.Fprintln(w, "TDX gives a guest no sealing key: manifests with a [sealed] mount are refused here until the broker releases one.")
	}
	if workspaceBase() == "" {
		fmt.Fprintln(w, "No memory-backed directory for sealed mounts: mount a tmpfs at /dev/shm or set XDG_RUNTIME_DIR to one.")
	}
}

// workspaceBase is where a sealed mount's plaintext would live, or "".
func workspaceBase() string {
	for _, b := range sealed.WorkspaceBases() {
		if sealed.MemoryBacked(b) {
			return b
		}
	}
	return ""
}

// verifyTDX checks a raw TDX quote offline and prints the claims.
// readPolicy reads a verification policy file.
func readPolicy(file string) (*attest.Policy, error) {
	data, err := regfile.ReadFile(file)
	if err != nil {
		return nil, errcode.Errorf(errcode.PolicyInvalid, "%v", err)
	}
	pol, err := attest.ParsePolicy(data)
	if err != nil {
		return nil, errcode.Errorf(errcode.PolicyInvalid, "%s: %v", file, err)
	}
	return pol, nil
}

// readCollateral reads a TDX collateral document.
func readCollateral(file string) (*tdx.Collateral, error) {
	data, err := regfile.ReadFile(file)
	if err != nil {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%v", err)
	}
	c, err := tdx.DecodeCollateral(data)
	if err != nil {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%s: %v", file, err).WithHint("pass the JSON that 'launch collateral fetch' wrote")
	}
	return c, nil
}

func verifyTDX(e *cliEnv, quoteFile string, now time.Time, coll *tdx.Collateral, asJSON bool) int {
	raw, err := regfile.ReadFile(quoteFile)
	if err != nil {
		return e.fail(inputError("--tdx-quote", errcode.Errorf(errcode.EvidenceMalformed, "%v", err)))
	}
	c, err := tdx.VerifyWith(raw, tdx.Options{Now: now, Collateral: coll})
	if err != nil {
		return e.fail(refusedError("--tdx-quote", errcode.Errorf(errcode.EvidenceRefused, "%v", err)))
	}
	if asJSON {
		rtmrs := make([]string, len(c.RTMRs))
		for i, r := range c.RTMRs {
			rtmrs[i] = hex.EncodeToString(r[:])
		}
		return writeJSON(e, map[string]any{
			"signature_chain": "valid", "version": c.Version, "mrtd": hex.EncodeToString(c.MRTD[:]), "rtmrs": rtmrs,
			"report_data": hex.EncodeToString(c.ReportData[:]), "mrconfigid": hex.EncodeToString(c.MRConfigID[:]),
			"td_attributes": hex.EncodeToString(c.TDAttributes), "debug": c.Debug, "tee_tcb_svn": hex.EncodeToString(c.TeeTcbSvn),
			"tcb_status":   map[bool]string{true: "UpToDate", false: "not judged"}[c.TCBUpToDate],
			"tee_tcb_svn2": hex.EncodeToString(c.TeeTcbSvn2), "mrservicetd": hex.EncodeToString(c.MRServiceTD[:]),
		})
	}
	tcb := "TCB status not judged: pass --tdx-collateral"
	if c.TCBUpToDate {
		tcb = "TCB up to date by Intel's collateral"
	}
	fmt.Fprintf(e.stdout, "signature and PCK chain: valid (Intel root, at %s; %s)\n", now.UTC().Format(time.RFC3339), tcb)
	fmt.Fprintf(e.stdout, "quote version: %d\nmrtd:          %x\n", c.Version, c.MRTD)
	for i, r := range c.RTMRs {
		fmt.Fprintf(e.stdout, "rtmr%d:         %x\n", i, r)
	}
	fmt.Fprintf(e.stdout, "report data:   %x\nmrconfigid:    %x\ntd attributes: %x (debug %s)\ntee tcb svn:   %x\n",
		c.ReportData, c.MRConfigID, c.TDAttributes, map[bool]string{true: "ON", false: "off"}[c.Debug], c.TeeTcbSvn)
	if c.TeeTcbSvn2 != nil {
		fmt.Fprintf(e.stdout, "tee tcb svn2:  %x\nmrservicetd:   %x\n", c.TeeTcbSvn2, c.MRServiceTD)
	}
	return 0
}

func collateralCommand() command {
	return command{
		name:    "collateral",
		summary: "fetch Intel's collateral for a TDX quote, for offline verification",
		usage:   "collateral fetch --tdx-quote FILE [--pcs-url URL] [-o FILE]",
		help: `
Collateral fetch asks Intel's Provisioning Certification Service (or a
mirror serving the same paths, --pcs-url) for what a TDX quote's TCB status
is judged by: the TCB info for its platform, the QE identity, the PCK CRL
and the root CA CRL, each signed by Intel. It writes them as one JSON
document that 'launch verify --tdx-collateral' reads offline, at any time
later (with --at), with no network.

Examples:
  launch collateral fetch --tdx-quote quote.dat -o collateral.json
  launch verify --tdx-quote quote.dat --tdx-collateral collateral.json`,
		run: doCollateral,
	}
}

func doCollateral(ctx context.Context, e *cliEnv, args []string) int {
	c := collateralCommand()
	args, done, code := e.subcommand(c, args, "fetch")
	if done {
		return code
	}
	fs := e.newFlagSet(c)
	quote := fs.String("tdx-quote", "", "the raw TDX quote (version 4)")
	pcsURL := fs.String("pcs-url", "", "a PCS mirror serving Intel's paths (default: "+tdx.PCS+")")
	out := fs.String("o", "", "write the document to this new file (default: stdout)")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
	if *quote == "" {
		return e.fail(errcode.Errorf(errcode.Usage, "collateral fetch needs --tdx-quote FILE").WithHint("usage: launch " + c.usage))
	}
	raw, err := regfile.ReadFile(*quote)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.EvidenceMalformed, "%v", err))
	}
	coll, err := tdx.FetchCollateral(raw, *pcsURL, nil)
	if err != nil {
		if errors.Is(err, tdx.ErrQuote) {
			return e.fail(errcode.Errorf(errcode.EvidenceMalformed, "%s: %v", *quote, err))
		}
		return e.fail(errcode.Errorf(errcode.CollateralUnavailable, "%v", err))
	}
	data, err := coll.Encode()
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "%v", err))
	}
	data = append(data, '\n')
	if *out == "" {
		e.stdout.Write(data)
		return 0
	}
	if err := writeNew(*out, data, 0o644, "-o never overwrites a file; choose another"); err != nil {
		return e.fail(err)
	}
	return 0
}

// writeNew writes data to a file that must not exist yet (E1031 if it
// does).
func writeNew(path string, data []byte, perm os.FileMode, hint string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if os.IsExist(err) {
		return errcode.Errorf(errcode.OutputExists, "%v", err).WithHint(hint)
	}
	if err != nil {
		return errcode.Errorf(errcode.Usage, "%v", err).WithHint(hint)
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Close()); err != nil {
		return errcode.Errorf(errcode.Internal, "writing %s: %v", path, err)
	}
	return nil
}
