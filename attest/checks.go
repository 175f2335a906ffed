package attest

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
	"github.com/ampoule-run/ampoule/vm/initdata"
)

// judgment is what the checks of one verification share: the envelope,
// the policy and the options, the report data the evidence must carry,
// and what the evidence's kind found that later checks need.
type judgment struct {
	env  *tee.Envelope
	p    *Policy
	opts Options
	// reportData is recomputed from env's measurement, runtime key and
	// nonce (zero, with reportDataErr, when they cannot make it).
	reportData    [64]byte
	reportDataErr error
	// debug: the TEE lets its host read the guest's memory. issued: when
	// the evidence says it was made (zero for evidence that carries no
	// time). Both are set by the evidence's kind once it verified.
	debug  bool
	issued time.Time
}

func newJudgment(env *tee.Envelope, p *Policy, opts Options) *judgment {
	j := &judgment{env: env, p: p, opts: opts}
	j.reportData, j.reportDataErr = env.ReportData()
	return j
}

// check is one rule of a verification: the reasons the envelope breaks
// it, none when it holds.
type check struct {
	name string
	run  func(j *judgment) []string
}

// claimCheck is one rule for what verified evidence of one kind claims.
type claimCheck[C any] struct {
	name string
	run  func(j *judgment, c *C) []string
}

// checks are the rules every envelope is held to, in the order their
// reasons are given; "evidence" runs those of the evidence's kind, and
// "fresh" needs the time it found.
var checks = []check{
	{"envelope version", checkVersion},
	{"backend accepted", checkBackend},
	{"report data computable", checkReportData},
	{"runtime key", checkRuntimeKey},
	{"evidence", checkEvidence},
	{"event only with registers", checkEventKind},
	{"nonce", checkNonce},
	{"reference measurement", checkMeasurement},
	{"profile accepted", checkProfile},
	{"init-data names the run", checkInitData},
	{"fresh", checkFreshness},
}

// kinds judge the evidence of each kind a policy may accept.
var kinds = map[string]func(j *judgment) []string{sim.Kind: judgeSim, snp.Kind: judgeSNP, tdx.Kind: judgeTDX}

// reasonf is one reason, formatted.
func reasonf(format string, args ...any) []string {
	return []string{fmt.Sprintf(format, args...)}
}

// reasonIf is the reason, formatted, when bad holds; none otherwise.
func reasonIf(bad bool, format string, args ...any) []string {
	if !bad {
		return nil
	}
	return reasonf(format, args...)
}

func runChecks(j *judgment, list []check) (reasons []string) {
	for _, c := range list {
		reasons = append(reasons, c.run(j)...)
	}
	return reasons
}

func runClaimChecks[C any](j *judgment, c *C, list []claimCheck[C]) (reasons []string) {
	for _, k := range list {
		reasons = append(reasons, k.run(j, c)...)
	}
	return reasons
}

func checkVersion(j *judgment) []string {
	return reasonIf(j.env.Version != tee.EnvelopeVersion, "envelope version %d, not %d", j.env.Version, tee.EnvelopeVersion)
}

func checkBackend(j *judgment) []string {
	return reasonIf(!slices.Contains(j.p.Backends, j.env.Kind), "backend %s is not one the policy accepts (%s)", j.env.Kind, strings.Join(j.p.Backends, ", "))
}

func checkReportData(j *judgment) []string {
	return reasonIf(j.reportDataErr != nil, "%v", j.reportDataErr)
}

// checkRuntimeKey: the runtime key is a P-256 point (65 bytes): a fixed
// length keeps the report data's concatenation of key and nonce
// unambiguous, and it is what secrets are wrapped to.
func checkRuntimeKey(j *judgment) []string {
	_, err := ecdh.P256().NewPublicKey(j.env.RuntimeKey)
	return reasonIf(err != nil, "the runtime key is not a P-256 public key")
}

func checkEvidence(j *judgment) []string {
	judge, ok := kinds[j.env.Kind]
	if !ok {
		return reasonf("unknown evidence kind %q", j.env.Kind)
	}
	return judge(j)
}

func checkEventKind(j *judgment) []string {
	return reasonIf(j.env.Event != nil && j.env.Kind != tdx.Kind, "%s evidence has no runtime measurement registers, yet the envelope records an event", j.env.Kind)
}

func checkNonce(j *judgment) []string {
	return reasonIf(j.opts.Nonce != nil && subtle.ConstantTimeCompare(j.opts.Nonce, j.env.Nonce) != 1, "the nonce is not the one the verifier issued")
}

func checkMeasurement(j *judgment) []string {
	m, err := j.env.MeasurementBytes()
	return reasonIf(err != nil || !slices.Contains(j.p.Measurements, m), "measurement %s is not a reference value of the policy", j.env.Measurement)
}

func checkProfile(j *judgment) []string {
	return reasonIf(!slices.Contains(j.p.Profiles, j.env.Profile), "profile %s is not one the policy accepts (%s)", j.env.Profile, strings.Join(j.p.Profiles, ", "))
}

// checkFreshness bounds the age of evidence that carries a time (hardware
// evidence carries none: its nonce shows it fresh).
func checkFreshness(j *judgment) (reasons []string) {
	if j.issued.IsZero() {
		return nil
	}
	maxAge := j.p.maxAge()
	if age := j.opts.Now.Sub(j.issued); age > maxAge {
		reasons = append(reasons, fmt.Sprintf("the evidence is %v old, more than max_age %v", age.Round(time.Second), maxAge))
	} else if age < -clockSkew {
		reasons = append(reasons, fmt.Sprintf("the evidence claims to come from %v in the future", (-age).Round(time.Second)))
	}
	return append(reasons, reasonIf(!j.issued.Equal(j.env.Issued), "the envelope's issue time is not the evidence's")...)
}

// bound: the evidence carries the report data recomputed from the
// envelope (never bound when the envelope's parts cannot make it, whatever
// the evidence carries).
func (j *judgment) bound(reportData [64]byte) []string {
	return reasonIf(j.reportDataErr != nil || subtle.ConstantTimeCompare(reportData[:], j.reportData[:]) != 1, "the report data does not bind this measurement, runtime key and nonce")
}

// debugAllowed: no debug access to a TEE unless the policy allows it.
func (j *judgment) debugAllowed(debug bool, what string) []string {
	return reasonIf(debug && !j.p.AllowDebug, "%s, and the policy does not set allow_debug", what)
}

// notMarkedInsecure: a TEE's evidence is never in an envelope marked
// insecure (a relying party would not know its class).
func (j *judgment) notMarkedInsecure(name string) []string {
	return reasonIf(j.env.Insecure, "%s evidence marked insecure", name)
}

// judgeSim judges the simulator's evidence: the policy must allow it and
// the envelope say it is insecure, before its signature is even checked.
func judgeSim(j *judgment) []string {
	reasons := runChecks(j, simEnvelopeChecks)
	claims, err := sim.Verify(tee.Evidence{Raw: j.env.Evidence, Collateral: j.env.Collateral})
	if err != nil {
		return append(reasons, err.Error())
	}
	j.issued = claims.Issued
	return append(reasons, runClaimChecks(j, &claims, simChecks)...)
}

var simEnvelopeChecks = []check{
	{"allow_insecure", func(j *judgment) []string {
		return reasonIf(!j.p.AllowInsecure, "evidence from the insecure simulator, and the policy does not set allow_insecure")
	}},
	{"marked insecure", func(j *judgment) []string {
		return reasonIf(!j.env.Insecure, "simulator evidence that does not say it is insecure")
	}},
	{"profile runs on the simulator", func(j *judgment) []string {
		// The profile's own table says where it runs: production never
		// runs on the simulator, so its simulator evidence is forged.
		p, err := profiles.Get(j.env.Profile)
		if err != nil {
			return reasonf("evidence for a profile the launcher does not have: %q", j.env.Profile)
		}
		return reasonIf(!p.AllowsBackend(tee.KindSim), "evidence from the simulator for the %s profile, which never runs on it", p.Name)
	}},
}

var simChecks = []claimCheck[sim.Claims]{
	{"sim_keys", simKeyPinned},
	{"report data bound", func(j *judgment, c *sim.Claims) []string { return j.bound(c.ReportData) }},
}

// simKeyPinned: a policy that pins simulator keys accepts only those.
func simKeyPinned(j *judgment, c *sim.Claims) []string {
	pinned := slices.ContainsFunc(j.p.SimKeys, func(k ed25519.PublicKey) bool { return k.Equal(c.PublicKey) })
	return reasonIf(len(j.p.SimKeys) > 0 && !pinned, "the simulator key %x is not one the policy pins", []byte(c.PublicKey))
}

// judgeSNP judges SEV-SNP evidence: the report, signed by the VCEK or
// VLEK it comes with, chained to AMD's roots for the policy's product.
func judgeSNP(j *judgment) []string {
	if len(j.env.Collateral) != 1 {
		return reasonf("SEV-SNP evidence needs its VCEK or VLEK certificate as its only collateral")
	}
	claims, err := snp.Verify(j.env.Evidence, j.env.Collateral[0], snp.Options{Product: j.p.SNPProduct, Now: j.opts.Now, Roots: j.opts.SNPRoots})
	if err != nil {
		return []string{err.Error()}
	}
	j.debug = claims.Debug
	return runClaimChecks(j, claims, snpChecks)
}

var snpChecks = []claimCheck[snp.Claims]{
	{"report data bound", func(j *judgment, c *snp.Claims) []string { return j.bound(c.ReportData) }},
	{"allow_debug", func(j *judgment, c *snp.Claims) []string {
		return j.debugAllowed(c.Debug, "the guest policy allows debugging (a host may read the guest's memory)")
	}},
	{"not marked insecure", func(j *judgment, _ *snp.Claims) []string { return j.notMarkedInsecure("SEV-SNP") }},
	{"snp_min_tcb", snpMinTCB},
	{"snp_launch_measurements", func(j *judgment, c *snp.Claims) []string {
		return reasonIf(len(j.p.SNPLaunchMeasurements) > 0 && !slices.Contains(j.p.SNPLaunchMeasurements, c.Measurement), "the SEV-SNP launch measurement %x is not one of the policy's snp_launch_measurements", c.Measurement)
	}},
	{"init-data is HOST_DATA's", func(j *judgment, c *snp.Claims) []string {
		return reasonIf(j.env.InitData != nil && initdata.HostData(j.env.InitData) != c.HostData, "HOST_DATA %x is not the SHA-256 of the envelope's init-data", c.HostData)
	}},
	{"snp_host_data", func(j *judgment, c *snp.Claims) []string {
		return reasonIf(j.p.SNPHostData != nil && *j.p.SNPHostData != c.HostData, "HOST_DATA %x is not the policy's snp_host_data", c.HostData)
	}},
}

func snpMinTCB(j *judgment, c *snp.Claims) []string {
	if j.p.SNPMinTCB == nil {
		return nil
	}
	ok, why := c.TCB.AtLeast(*j.p.SNPMinTCB)
	return reasonIf(!ok, "the TCB is below the policy's snp_min_tcb (%s)", why)
}

// judgeTDX judges a TDX quote: its signature, the attestation key's QE
// report and the PCK chain to Intel's root (and Intel's collateral, when
// given).
func judgeTDX(j *judgment) []string {
	claims, err := tdx.VerifyWith(j.env.Evidence, tdx.Options{Now: j.opts.Now, Roots: j.opts.TDXRoots, Collateral: j.opts.TDXCollateral})
	if err != nil {
		return []string{err.Error()}
	}
	j.debug = claims.Debug
	return runClaimChecks(j, claims, tdxChecks)
}

var tdxChecks = []claimCheck[tdx.Claims]{
	{"report data bound", func(j *judgment, c *tdx.Claims) []string { return j.bound(c.ReportData) }},
	{"allow_debug", func(j *judgment, c *tdx.Claims) []string {
		return j.debugAllowed(c.Debug, "the TD is debuggable (TUD.DEBUG; a host may read its memory)")
	}},
	{"not marked insecure", func(j *judgment, _ *tdx.Claims) []string { return j.notMarkedInsecure("TDX") }},
	{"tdx_min_tee_tcb_svn", tdxMinTeeTcbSvn},
	{"tdx_require_tcb_up_to_date", func(j *judgment, c *tdx.Claims) []string {
		return reasonIf(j.p.TDXRequireTCBUpToDate && !c.TCBUpToDate, "the TDX TCB status was not judged (no collateral), and the policy sets tdx_require_tcb_up_to_date")
	}},
	{"tdx_mrtds", func(j *judgment, c *tdx.Claims) []string {
		return reasonIf(len(j.p.TDXMRTDs) > 0 && !slices.Contains(j.p.TDXMRTDs, c.MRTD), "MRTD %x is not one of the policy's tdx_mrtds", c.MRTD)
	}},
	{"tdx_td_attributes", tdxAttributes},
	{"init-data is MRCONFIGID's", func(j *judgment, c *tdx.Claims) []string {
		return reasonIf(j.env.InitData != nil && initdata.MRConfigID(j.env.InitData) != c.MRConfigID, "MRCONFIGID %x is not the SHA-384 of the envelope's init-data", c.MRConfigID)
	}},
	{"tdx_mr_config_id", func(j *judgment, c *tdx.Claims) []string {
		return reasonIf(j.p.TDXMRConfigID != nil && *j.p.TDXMRConfigID != c.MRConfigID, "MRCONFIGID %x is not the policy's tdx_mr_config_id", c.MRConfigID)
	}},
	{"tdx_rtmrs", tdxRTMRs},
	{"rtmr3 event", tdxEvent},
}

// tdxMinTeeTcbSvn: each byte of TEE_TCB_SVN at least the policy's there.
func tdxMinTeeTcbSvn(j *judgment, c *tdx.Claims) []string {
	min := j.p.TDXMinTeeTcbSvn
	for i := range min {
		if i >= len(c.TeeTcbSvn) || c.TeeTcbSvn[i] < min[i] {
			return reasonf("TEE_TCB_SVN %x is below the policy's tdx_min_tee_tcb_svn %x", c.TeeTcbSvn, min)
		}
	}
	return nil
}

func tdxAttributes(j *judgment, c *tdx.Claims) []string {
	a := j.p.TDXTDAttributes
	if a == nil {
		return nil
	}
	for i := range a.Mask {
		if i >= len(c.TDAttributes) || c.TDAttributes[i]&a.Mask[i] != a.Value[i]&a.Mask[i] {
			return reasonf("TDATTRIBUTES %x under mask %x are not the policy's tdx_td_attributes %x", c.TDAttributes, a.Mask, a.Value)
		}
	}
	return nil
}

func tdxRTMRs(j *judgment, c *tdx.Claims) (reasons []string) {
	for i, want := range j.p.TDXRTMRs {
		reasons = append(reasons, reasonIf(want != nil && *want != c.RTMRs[i], "RTMR%d %x is not the policy's tdx_rtmrs.rtmr%d", i, c.RTMRs[i], i)...)
	}
	return reasons
}

// tdxEvent: the run's measurement was the last event extended into RTMR3
// before the quote, when the envelope records it (and it must, under
// tdx_require_rtmr).
func tdxEvent(j *judgment, c *tdx.Claims) []string {
	ev := j.env.Event
	if ev == nil {
		return reasonIf(j.p.TDXRequireRTMR, "the evidence shows no RTMR%d event, and the policy sets tdx_require_rtmr", tdx.RTMRIndex)
	}
	m, err := j.env.MeasurementBytes()
	d := tee.EventDigest(m)
	switch {
	case ev.Register != tdx.RTMRIndex:
		return reasonf("the event extends RTMR%d; runs extend RTMR%d", ev.Register, tdx.RTMRIndex)
	case err != nil || !bytes.Equal(ev.Digest, d[:]):
		return reasonf("the RTMR%d event is not the envelope's measurement", tdx.RTMRIndex)
	case ev.After() != c.RTMRs[tdx.RTMRIndex]:
		return reasonf("RTMR%d in the quote (%x) is not the event extended into the value before it: the measurement was not the last thing extended", tdx.RTMRIndex, c.RTMRs[tdx.RTMRIndex])
	}
	return nil
}

// checkInitData: init-data in the envelope must decode and name the
// envelope's measurement and profile; the evidence's kind checks that the
// report carries its digest (the simulator has no such field).
func checkInitData(j *judgment) []string {
	if j.env.InitData == nil {
		return nil
	}
	doc, err := initdata.Decode(j.env.InitData)
	if err != nil {
		return []string{err.Error()}
	}
	return reasonIf(doc.Measurement != j.env.Measurement || doc.Profile != j.env.Profile,
		"the init-data names measurement %s under %s, and the evidence is of %s under %s", doc.Measurement, doc.Profile, j.env.Measurement, j.env.Profile)
}
