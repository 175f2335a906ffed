package ampoule

import (
	"io"
	"strings"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/textform"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// VerifyInputs are the files a verifier was handed, as 'launch verify'
// takes them. The first set of these chooses the check: an SEV-SNP
// report's files (SNP.Report), a TDX quote (TDXQuote), or else an
// evidence envelope judged against a policy (Envelope and Policy).
type VerifyInputs struct {
	// SNP are a raw SEV-SNP report and its certificates; Product its
	// processor line (Milan, Genoa, Turin).
	SNP     attest.SNPFiles
	Product string
	// TDXQuote is a raw TDX quote; TDXCollateral, Intel's collateral
	// ('launch collateral fetch'), which judges its TCB status offline and
	// an envelope's TDX quote too.
	TDXQuote, TDXCollateral string
	// Envelope is an evidence envelope ('launch attest'), Policy the
	// verification policy (TOML) it is judged against.
	Envelope, Policy string
	// Options are the envelope's judgement's: the nonce it must carry and
	// the time; Now is the by-hand checks' time too.
	Options attest.Options
}

// Verification is what a check of VerifyInputs found.
type Verification struct {
	// ByHand is a by-hand check's fields (*attest.SNPCheck or
	// *attest.TDXCheck); Result an envelope's verdict. One is set.
	ByHand any
	Result *attest.Result
	// Warnings and Hints are lines for the person verifying: a policy that
	// accepts any simulator's evidence, a TCB status judged without
	// Intel's collateral.
	Warnings, Hints []string
}

// Found is what the check found, to show: the envelope's verdict, or
// else the by-hand check's fields.
func (v Verification) Found() any {
	if v.Result != nil {
		return v.Result
	}
	return v.ByHand
}

// WriteText writes what the check found as text: the envelope's verdict
// (attest.Result.WriteText), or the by-hand check's fields, one a line.
func (v Verification) WriteText(w io.Writer) {
	switch {
	case v.Result != nil:
		v.Result.WriteText(w)
	case v.ByHand != nil:
		textform.Write(w, v.ByHand)
	}
}

// WarningUnpinned is what a policy accepting the simulator without pinning
// its keys is warned of.
const WarningUnpinned = "the policy accepts the simulator but pins no simulator key (sim_keys): anyone's simulator evidence would pass, so its verdict is at best a warning and a broker refuses to serve it; pin this machine's key ('launch platform info' prints it) or set sim_keys = \"any\""

// HintTDXCollateral is the hint of a TDX quote checked by hand without
// Intel's collateral.
const HintTDXCollateral = "the TCB status is judged with Intel's collateral: pass --tdx-collateral FILE ('launch collateral fetch')"

// Verify makes the check in's inputs choose. An input that cannot be read
// is an error naming its flag, with its hint; an envelope judged anything
// but affirming is E3008 evidence-refused, returned with its verdict.
func Verify(in VerifyInputs) (Verification, error) {
	var v Verification
	if in.SNP.Report != "" {
		if err := attest.CheckProduct(in.Product); err != nil {
			return v, err
		}
		check, err := attest.VerifySNPFiles(in.SNP, snp.Options{Product: in.Product, Now: in.Options.Now})
		v.ByHand = check
		return v, attest.Hinted(err)
	}
	if in.TDXCollateral != "" {
		coll, err := ReadTDXCollateral(in.TDXCollateral)
		if err != nil {
			return v, attest.InputError("--tdx-collateral", err)
		}
		in.Options.TDXCollateral = coll
	}
	if in.TDXQuote != "" {
		check, err := attest.VerifyTDXFile(in.TDXQuote, tdx.Options{Now: in.Options.Now, Collateral: in.Options.TDXCollateral})
		if err != nil {
			return v, attest.Hinted(err)
		}
		if check.TCBStatus != "UpToDate" {
			v.Hints = append(v.Hints, HintTDXCollateral)
		}
		v.ByHand = check
		return v, nil
	}
	return verifyEnvelope(in)
}

// verifyEnvelope judges in's envelope against its policy.
func verifyEnvelope(in VerifyInputs) (Verification, error) {
	var v Verification
	pol, err := ReadPolicy(in.Policy)
	if err != nil {
		return v, attest.InputError("--policy", err)
	}
	if pol.SimUnpinned() {
		v.Warnings = append(v.Warnings, WarningUnpinned)
	}
	r, err := VerifyEvidenceFile(in.Envelope, pol, in.Options)
	if err != nil {
		return v, attest.InputError("EVIDENCE", err)
	}
	v.Result = &r
	if r.Status != attest.Affirming {
		return v, errcode.Errorf(errcode.EvidenceRefused, "%s: %s", r.Status, strings.Join(r.Reasons, "; "))
	}
	return v, nil
}
