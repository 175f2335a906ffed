// Package attest verifies evidence envelopes against a tenant's policy and
// says what it found in the RATS vocabulary (RFC 9334, EAR): affirming,
// warning or contraindicated, with the reasons.
package attest

import (
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// Status is a verdict in the EAR vocabulary.
type Status string

// The verdicts.
const (
	Affirming       Status = "affirming"
	Warning         Status = "warning"
	Contraindicated Status = "contraindicated"
)

// Result is a verdict and why.
type Result struct {
	Status      Status   `json:"status"`
	Reasons     []string `json:"reasons"`
	Kind        string   `json:"kind"`
	Insecure    bool     `json:"insecure"`
	Profile     string   `json:"profile"`
	Measurement string   `json:"measurement"`
	// Debug: the TEE lets its host read the guest's memory (the policy's
	// allow_debug let it pass). A relying party keeps its secrets for
	// such runs apart from those of protected runs.
	Debug bool `json:"debug"`
}

// WriteText writes the verdict for a person, as launch verify prints it:
// the status, the evidence's kind, profile and measurement, then each
// reason on its own line.
func (r Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s: %s evidence, profile %s, measurement %s\n", r.Status, r.Kind, r.Profile, r.Measurement)
	for _, reason := range r.Reasons {
		fmt.Fprintf(w, "  - %s\n", reason)
	}
}

// Class is the protection evidence shows, for a relying party to keep
// secrets apart: "hardware" (a TEE, debugging off), "debug" (a TEE a host
// may read) or "insecure" (the simulator). Evidence of a lower class must
// never obtain a secret released to a higher one.
func (r *Result) Class() string {
	switch {
	case r.Insecure || r.Kind == sim.Kind:
		return ClassInsecure
	case r.Debug:
		return ClassDebug
	}
	return ClassHardware
}

// The classes of evidence (Result.Class): the simulator's or evidence its
// envelope marks insecure, a TEE's whose debug bit is set, and a TEE's a
// host can neither make nor read.
const (
	ClassInsecure = "insecure"
	ClassDebug    = "debug"
	ClassHardware = "hardware"
)

// Options are what a verification depends on besides the envelope.
type Options struct {
	// Nonce, if set, must be the envelope's.
	Nonce []byte
	// Now is the time evidence is judged at.
	Now time.Time
	// SNPRoots, if set, replace the AMD roots go-sev-guest embeds (tests).
	SNPRoots *snp.Roots
	// TDXRoots, if set, replace Intel's SGX root (tests).
	TDXRoots *x509.CertPool
	// TDXCollateral, if set, is Intel's collateral for the quote: its TCB
	// must then be up to date.
	TDXCollateral *tdx.Collateral
}

// clockSkew is how far in the future evidence may claim to be from.
const clockSkew = time.Minute

// Verify judges env against p. Every failed check is a reason; any failed
// check makes the verdict contraindicated. The checks are small and
// composed: those every envelope is held to (version, backend, report
// data, runtime key, nonce, reference measurement, profile, freshness)
// and, once its evidence verifies, those of its kind (sim, sev-snp, tdx),
// each giving its own reasons. An otherwise affirming
// verdict then gains notes: simulator evidence says it is insecure, and is
// a warning when the policy pins no simulator key; evidence that carries
// no time, judged without a nonce, is a warning (its freshness unjudged).
// No envelope or no policy is contraindicated.
func Verify(env *tee.Envelope, p *Policy, opts Options) Result {
	if env == nil || p == nil {
		return Result{Status: Contraindicated, Reasons: []string{"no envelope or no policy to judge it by"}}
	}
	j := newJudgment(env, p, opts)
	var reasons []string
	for _, c := range checks {
		reasons = append(reasons, c.run(j)...)
	}
	r := Result{Kind: env.Kind, Insecure: env.Insecure, Profile: env.Profile, Measurement: env.Measurement, Status: Affirming, Debug: j.debug}
	if len(reasons) > 0 {
		r.Status, r.Reasons = Contraindicated, reasons
		return r
	}
	if env.Kind == sim.Kind {
		r.Reasons = append(r.Reasons, "the simulator is insecure: nothing protects the run from the host; the policy allows it")
		// Anyone can make a simulator key: unpinned, its evidence shows
		// nothing of which machine made it.
		if len(p.SimKeys) == 0 && !p.SimKeysAny {
			r.Status = Warning
			r.Reasons = append(r.Reasons, "the policy pins no simulator key (sim_keys): anyone's simulator could have made this evidence; pin this machine's ('launch platform info' prints it) or set sim_keys = \"any\"")
		}
	}
	// Hardware evidence carries no time of its own: only the verifier's
	// nonce shows it is fresh. Without one it may be a replay of any age,
	// which max_age cannot catch.
	if r.Status == Affirming && j.issued.IsZero() && opts.Nonce == nil {
		r.Status = Warning
		r.Reasons = append(r.Reasons, "freshness not judged: "+env.Kind+" evidence carries no time, and no nonce was given to check")
	}
	return r
}

// Authentic checks only that env's evidence is genuine evidence of its kind
// (its signature and certificate chain to the vendor's root, or the
// simulator's signature) and that it carries the report data binding env's
// measurement, runtime key and nonce. It judges nothing the evidence says:
// any TEE, whatever it runs, and anyone holding a simulator key can make
// authentic evidence for a runtime key of their own; only Verify, with the
// tenant's policy, says the evidence is of the tenant's run. The verdict is
// contraindicated when the evidence is not authentic; otherwise it holds
// the reasons Verify would add (the simulator, no nonce).
func Authentic(env *tee.Envelope, opts Options) Result {
	p := &Policy{
		Profiles: []string{env.Profile}, Backends: []string{env.Kind},
		AllowInsecure: true, AllowDebug: true, MaxAge: time.Duration(math.MaxInt64),
	}
	if m, err := env.MeasurementBytes(); err == nil {
		p.Measurements = [][48]byte{m}
	}
	if env.Kind != snp.Kind {
		return Verify(env, p, opts)
	}
	// A VCEK names its processor line and stepping, which the policy
	// would pin: try each.
	r := Verify(env, p, opts)
	for _, line := range []string{"Milan", "Genoa", "Turin"} {
		for step := '0'; step <= '9' && r.Status == Contraindicated; step++ {
			p.SNPProduct = line + "-B" + string(step)
			r = Verify(env, p, opts)
		}
	}
	return r
}
