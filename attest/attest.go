// Package attest verifies evidence envelopes against a tenant's policy and
// says what it found in the RATS vocabulary (RFC 9334, EAR): affirming,
// warning or contraindicated, with the reasons.
package attest

import (
	"bytes"
	"crypto/ecdh"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

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

// Policy is what a tenant accepts.
type Policy struct {
	// Measurements are the reference values (hex SHA-384) a run may have.
	Measurements []string `toml:"measurements"`
	// Profiles a run may have run under.
	Profiles []string `toml:"profiles"`
	// Backends the evidence may come from: "sev-snp", "tdx", "sim".
	Backends []string `toml:"backends"`
	// AllowInsecure accepts the simulator, which protects nothing.
	AllowInsecure bool `toml:"allow_insecure"`
	// SimKeys pins the simulator keys (hex Ed25519) accepted; the TOML
	// string "any" (SimKeys{AnySimKey}) accepts any. A policy accepting
	// the simulator with neither judges its evidence a warning at best
	// (SimUnpinned), and the broker refuses to serve it.
	SimKeys SimKeys `toml:"sim_keys"`
	// MaxAge bounds how old evidence may be, as a Go duration.
	MaxAge string `toml:"max_age"`
	// AllowDebug accepts a TEE whose debug policy bit is set (a host could
	// then read the guest's memory).
	AllowDebug bool `toml:"allow_debug"`
	// SNPProduct is the AMD processor line SEV-SNP evidence comes from
	// ("Milan", "Genoa", "Turin", optionally with a stepping "-B1").
	SNPProduct string `toml:"snp_product"`
	// SNPMinTCB, if set, is the lowest SEV-SNP TCB (reported, the one the
	// VCEK was issued for) accepted.
	SNPMinTCB *snp.TCB `toml:"snp_min_tcb"`
	// TDXMinTeeTcbSvn, if set, is the lowest TDX TEE_TCB_SVN accepted, as
	// hex (compared byte by byte).
	TDXMinTeeTcbSvn string `toml:"tdx_min_tee_tcb_svn"`

	// SNPLaunchMeasurements, if set, are the SEV-SNP launch measurements
	// (hex SHA-384 of the guest's initial image: firmware, kernel, command
	// line) accepted.
	SNPLaunchMeasurements []string `toml:"snp_launch_measurements"`
	// SNPHostData, if set, is the HOST_DATA (hex, 32 bytes) the guest must
	// have been launched with.
	SNPHostData string `toml:"snp_host_data"`
	// TDXMRTDs, if set, are the TD measurements (hex SHA-384 of the TD's
	// initial image) accepted.
	TDXMRTDs []string `toml:"tdx_mrtds"`
	// TDXMRConfigID, if set, is the MRCONFIGID (hex, 48 bytes) the TD must
	// have been launched with.
	TDXMRConfigID string `toml:"tdx_mr_config_id"`
	// TDXRTMRs, if set, pin RTMR0 to RTMR2 (firmware configuration, loader
	// and kernel, OS). RTMR3 is the runtime's: see TDXRequireRTMR.
	TDXRTMRs *RTMRs `toml:"tdx_rtmrs"`
	// TDXRequireRTMR refuses TDX evidence that does not show the run's
	// measurement extended into RTMR3 as the last event before the quote.
	TDXRequireRTMR bool `toml:"tdx_require_rtmr"`
	// TDXTDAttributes and TDXTDAttributesMask, if set (hex, 8 bytes each),
	// require TDATTRIBUTES & mask == value: SEPT_VE_DISABLE (bit 28) set
	// and MIGRATABLE (bit 29) clear, say, with mask 0000003000000000 and
	// value 0000001000000000 (the bytes as the quote holds them).
	TDXTDAttributes     string `toml:"tdx_td_attributes"`
	TDXTDAttributesMask string `toml:"tdx_td_attributes_mask"`
	// TDXRequireTCBUpToDate refuses TDX evidence whose TCB status was not
	// judged with Intel's collateral (which accepts only up to date).
	TDXRequireTCBUpToDate bool `toml:"tdx_require_tcb_up_to_date"`

	maxAge time.Duration
}

// AnySimKey, as sim_keys = "any", accepts the evidence of any simulator
// key: anyone's.
const AnySimKey = "any"

// SimKeys are the simulator keys a policy pins, hex Ed25519 public keys,
// or the single AnySimKey. In TOML: a list of keys, or the string "any".
type SimKeys []string

// UnmarshalText reads the string form, which can only be "any" (a list is
// read as a list).
func (k *SimKeys) UnmarshalText(text []byte) error {
	if string(text) != AnySimKey {
		return fmt.Errorf("a list of simulator keys, or %q, not %q", AnySimKey, text)
	}
	*k = SimKeys{AnySimKey}
	return nil
}

// Any reports whether k accepts any simulator key.
func (k SimKeys) Any() bool { return len(k) == 1 && k[0] == AnySimKey }

// SimUnpinned reports whether p accepts the simulator's evidence without
// pinning which simulator keys it accepts (nor saying sim_keys = "any").
func (p *Policy) SimUnpinned() bool {
	return p.AllowInsecure && slices.Contains(p.Backends, sim.Kind) && len(p.SimKeys) == 0
}

// RTMRs are reference values for TDX's firmware and OS registers, hex
// SHA-384; an empty one is not checked.
type RTMRs struct {
	RTMR0 string `toml:"rtmr0"`
	RTMR1 string `toml:"rtmr1"`
	RTMR2 string `toml:"rtmr2"`
}

func (r *RTMRs) list() []string { return []string{r.RTMR0, r.RTMR1, r.RTMR2} }

// hexOf checks that s is n bytes of hex.
func hexOf(key, s string, n int) error {
	if b, err := hex.DecodeString(s); err != nil || len(b) != n {
		return fmt.Errorf("%w: %s: %q is not %d hex digits", ErrPolicy, key, s, 2*n)
	}
	return nil
}

// DefaultMaxAge is a policy's max_age when it sets none.
const DefaultMaxAge = 5 * time.Minute

// ErrPolicy wraps every reason a policy cannot be read.
var ErrPolicy = errors.New("invalid policy")

// ParsePolicy reads a policy strictly: unknown keys and wrong types are
// errors, and it must name at least one measurement, profile and backend.
func ParsePolicy(data []byte) (*Policy, error) {
	var p Policy
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, fmt.Errorf("%w: line %d: %v", ErrPolicy, row, de)
		}
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) && len(sm.Errors) > 0 {
			row, _ := sm.Errors[0].Position()
			return nil, fmt.Errorf("%w: line %d: unknown key %s", ErrPolicy, row, strings.Join(sm.Errors[0].Key(), "."))
		}
		return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	switch {
	case len(p.Measurements) == 0:
		return nil, fmt.Errorf("%w: measurements: list at least one reference measurement", ErrPolicy)
	case len(p.Profiles) == 0:
		return nil, fmt.Errorf("%w: profiles: list at least one profile", ErrPolicy)
	case len(p.Backends) == 0:
		return nil, fmt.Errorf("%w: backends: list at least one backend", ErrPolicy)
	}
	for _, m := range p.Measurements {
		if b, err := hex.DecodeString(m); err != nil || len(b) != 48 {
			return nil, fmt.Errorf("%w: measurements: %q is not 96 hex digits", ErrPolicy, m)
		}
	}
	for _, b := range p.Backends {
		if b != "sev-snp" && b != "tdx" && b != sim.Kind {
			return nil, fmt.Errorf("%w: backends: %q is not sev-snp, tdx or sim", ErrPolicy, b)
		}
	}
	if p.TDXMinTeeTcbSvn != "" {
		if b, err := hex.DecodeString(p.TDXMinTeeTcbSvn); err != nil || len(b) == 0 || len(b) > 16 {
			return nil, fmt.Errorf("%w: tdx_min_tee_tcb_svn: %q is not 1 to 16 bytes of hex", ErrPolicy, p.TDXMinTeeTcbSvn)
		}
	}
	for _, m := range p.SNPLaunchMeasurements {
		if err := hexOf("snp_launch_measurements", m, 48); err != nil {
			return nil, err
		}
	}
	for _, m := range p.TDXMRTDs {
		if err := hexOf("tdx_mrtds", m, 48); err != nil {
			return nil, err
		}
	}
	if p.SNPHostData != "" {
		if err := hexOf("snp_host_data", p.SNPHostData, 32); err != nil {
			return nil, err
		}
	}
	if p.TDXMRConfigID != "" {
		if err := hexOf("tdx_mr_config_id", p.TDXMRConfigID, 48); err != nil {
			return nil, err
		}
	}
	if (p.TDXTDAttributes == "") != (p.TDXTDAttributesMask == "") {
		return nil, fmt.Errorf("%w: tdx_td_attributes and tdx_td_attributes_mask go together", ErrPolicy)
	}
	if p.TDXTDAttributes != "" {
		if err := hexOf("tdx_td_attributes", p.TDXTDAttributes, 8); err != nil {
			return nil, err
		}
		if err := hexOf("tdx_td_attributes_mask", p.TDXTDAttributesMask, 8); err != nil {
			return nil, err
		}
	}
	if p.TDXRTMRs != nil {
		for i, v := range p.TDXRTMRs.list() {
			if v != "" {
				if err := hexOf(fmt.Sprintf("tdx_rtmrs.rtmr%d", i), v, 48); err != nil {
					return nil, err
				}
			}
		}
	}
	if !p.SimKeys.Any() {
		for _, k := range p.SimKeys {
			if b, err := hex.DecodeString(k); err != nil || len(b) != 32 {
				return nil, fmt.Errorf("%w: sim_keys: %q is not 64 hex digits (a list of keys, or the string %q alone)", ErrPolicy, k, AnySimKey)
			}
		}
	}
	p.maxAge = DefaultMaxAge
	if p.MaxAge != "" {
		d, err := time.ParseDuration(p.MaxAge)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: max_age: %q is not a positive duration", ErrPolicy, p.MaxAge)
		}
		p.maxAge = d
	}
	return &p, nil
}

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

// Class is the protection evidence shows, for a relying party to keep
// secrets apart: "hardware" (a TEE, debugging off), "debug" (a TEE a host
// may read) or "insecure" (the simulator). Evidence of a lower class must
// never obtain a secret released to a higher one.
func (r *Result) Class() string {
	switch {
	case r.Insecure || r.Kind == sim.Kind:
		return "insecure"
	case r.Debug:
		return "debug"
	}
	return "hardware"
}

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
// check makes the verdict contraindicated.
func Verify(env *tee.Envelope, p *Policy, opts Options) Result {
	r := Result{Kind: env.Kind, Insecure: env.Insecure, Profile: env.Profile, Measurement: env.Measurement, Status: Affirming}
	fail := func(format string, args ...any) {
		r.Status = Contraindicated
		r.Reasons = append(r.Reasons, fmt.Sprintf(format, args...))
	}
	if !slices.Contains(p.Backends, env.Kind) {
		fail("backend %s is not one the policy accepts (%s)", env.Kind, strings.Join(p.Backends, ", "))
	}
	want, err := env.ReportData()
	if err != nil {
		fail("%v", err)
	}
	// bound checks that evidence carries the report data recomputed above.
	bound := func(reportData [64]byte) {
		if subtle.ConstantTimeCompare(reportData[:], want[:]) != 1 {
			fail("the report data does not bind this measurement, runtime key and nonce")
		}
	}
	// hardware adds what every TEE's evidence must also satisfy: no debug
	// access unless the policy allows it, and no insecure mark.
	hardware := func(name string, reportData [64]byte, debug bool, debugWhat string) {
		bound(reportData)
		r.Debug = debug
		if debug && !p.AllowDebug {
			fail("%s, and the policy does not set allow_debug", debugWhat)
		}
		if env.Insecure {
			fail("%s evidence marked insecure", name)
		}
	}
	// The runtime key is a P-256 point (65 bytes): a fixed length keeps
	// the report data's concatenation of key and nonce unambiguous, and it
	// is what secrets are wrapped to.
	if _, err := ecdh.P256().NewPublicKey(env.RuntimeKey); err != nil {
		fail("the runtime key is not a P-256 public key")
	}
	var issued time.Time
	switch env.Kind {
	case sim.Kind:
		if !p.AllowInsecure {
			fail("evidence from the insecure simulator, and the policy does not set allow_insecure")
		}
		if !env.Insecure {
			fail("simulator evidence that does not say it is insecure")
		}
		if env.Profile == "production" {
			fail("evidence from the simulator for the production profile, which never runs on it")
		}
		claims, err := sim.Verify(tee.Evidence{Raw: env.Evidence, Collateral: env.Collateral})
		if err != nil {
			fail("%v", err)
			break
		}
		if len(p.SimKeys) > 0 && !p.SimKeys.Any() && !slices.Contains(p.SimKeys, hex.EncodeToString(claims.PublicKey)) {
			fail("the simulator key %x is not one the policy pins", []byte(claims.PublicKey))
		}
		bound(claims.ReportData)
		issued = claims.Issued
	case snp.Kind:
		if len(env.Collateral) != 1 {
			fail("SEV-SNP evidence needs its VCEK or VLEK certificate as its only collateral")
			break
		}
		claims, err := snp.Verify(env.Evidence, env.Collateral[0], snp.Options{Product: p.SNPProduct, Now: opts.Now, Roots: opts.SNPRoots})
		if err != nil {
			fail("%v", err)
			break
		}
		hardware("SEV-SNP", claims.ReportData, claims.Debug, "the guest policy allows debugging (a host may read the guest's memory)")
		if p.SNPMinTCB != nil {
			if ok, why := claims.TCB.AtLeast(*p.SNPMinTCB); !ok {
				fail("the TCB is below the policy's snp_min_tcb (%s)", why)
			}
		}
		if len(p.SNPLaunchMeasurements) > 0 && !slices.Contains(p.SNPLaunchMeasurements, hex.EncodeToString(claims.Measurement[:])) {
			fail("the SEV-SNP launch measurement %x is not one of the policy's snp_launch_measurements", claims.Measurement)
		}
		if p.SNPHostData != "" && hex.EncodeToString(claims.HostData[:]) != strings.ToLower(p.SNPHostData) {
			fail("HOST_DATA %x is not the policy's snp_host_data", claims.HostData)
		}
	case tdx.Kind:
		claims, err := tdx.VerifyWith(env.Evidence, tdx.Options{Now: opts.Now, Roots: opts.TDXRoots, Collateral: opts.TDXCollateral})
		if err != nil {
			fail("%v", err)
			break
		}
		hardware("TDX", claims.ReportData, claims.Debug, "the TD is debuggable (TUD.DEBUG; a host may read its memory)")
		if p.TDXMinTeeTcbSvn != "" {
			min, _ := hex.DecodeString(p.TDXMinTeeTcbSvn)
			for i := range min {
				if i >= len(claims.TeeTcbSvn) || claims.TeeTcbSvn[i] < min[i] {
					fail("TEE_TCB_SVN %x is below the policy's tdx_min_tee_tcb_svn %s", claims.TeeTcbSvn, p.TDXMinTeeTcbSvn)
					break
				}
			}
		}
		if p.TDXRequireTCBUpToDate && !claims.TCBUpToDate {
			fail("the TDX TCB status was not judged (no collateral), and the policy sets tdx_require_tcb_up_to_date")
		}
		if len(p.TDXMRTDs) > 0 && !slices.Contains(p.TDXMRTDs, hex.EncodeToString(claims.MRTD[:])) {
			fail("MRTD %x is not one of the policy's tdx_mrtds", claims.MRTD)
		}
		if p.TDXTDAttributes != "" {
			want, _ := hex.DecodeString(p.TDXTDAttributes)
			mask, _ := hex.DecodeString(p.TDXTDAttributesMask)
			for i := range mask {
				if i >= len(claims.TDAttributes) || claims.TDAttributes[i]&mask[i] != want[i]&mask[i] {
					fail("TDATTRIBUTES %x under mask %s are not the policy's tdx_td_attributes %s", claims.TDAttributes, p.TDXTDAttributesMask, p.TDXTDAttributes)
					break
				}
			}
		}
		if p.TDXMRConfigID != "" && hex.EncodeToString(claims.MRConfigID[:]) != strings.ToLower(p.TDXMRConfigID) {
			fail("MRCONFIGID %x is not the policy's tdx_mr_config_id", claims.MRConfigID)
		}
		if p.TDXRTMRs != nil {
			for i, want := range p.TDXRTMRs.list() {
				if want != "" && hex.EncodeToString(claims.RTMRs[i][:]) != strings.ToLower(want) {
					fail("RTMR%d %x is not the policy's tdx_rtmrs.rtmr%d", i, claims.RTMRs[i], i)
				}
			}
		}
		switch ev := env.Event; {
		case ev != nil:
			m, _ := env.MeasurementBytes()
			d := tee.EventDigest(m)
			switch {
			case ev.Register != tdx.RTMRIndex:
				fail("the event extends RTMR%d; runs extend RTMR%d", ev.Register, tdx.RTMRIndex)
			case !bytes.Equal(ev.Digest, d[:]):
				fail("the RTMR%d event is not the envelope's measurement", tdx.RTMRIndex)
			case ev.After() != claims.RTMRs[tdx.RTMRIndex]:
				fail("RTMR%d in the quote (%x) is not the event extended into the value before it: the measurement was not the last thing extended", tdx.RTMRIndex, claims.RTMRs[tdx.RTMRIndex])
			}
		case p.TDXRequireRTMR:
			fail("the evidence shows no RTMR%d event, and the policy sets tdx_require_rtmr", tdx.RTMRIndex)
		}
	default:
		fail("unknown evidence kind %q", env.Kind)
	}
	if env.Event != nil && env.Kind != tdx.Kind {
		fail("%s evidence has no runtime measurement registers, yet the envelope records an event", env.Kind)
	}
	if opts.Nonce != nil && subtle.ConstantTimeCompare(opts.Nonce, env.Nonce) != 1 {
		fail("the nonce is not the one the verifier issued")
	}
	if !slices.Contains(p.Measurements, env.Measurement) {
		fail("measurement %s is not a reference value of the policy", env.Measurement)
	}
	if !slices.Contains(p.Profiles, env.Profile) {
		fail("profile %s is not one the policy accepts (%s)", env.Profile, strings.Join(p.Profiles, ", "))
	}
	if !issued.IsZero() {
		if age := opts.Now.Sub(issued); age > p.maxAge {
			fail("the evidence is %v old, more than max_age %v", age.Round(time.Second), p.maxAge)
		} else if age < -clockSkew {
			fail("the evidence claims to come from %v in the future", (-age).Round(time.Second))
		}
		if !issued.Equal(env.Issued) {
			fail("the envelope's issue time is not the evidence's")
		}
	}
	if r.Status == Affirming && env.Kind == sim.Kind {
		r.Reasons = append(r.Reasons, "the simulator is insecure: nothing protects the run from the host; the policy allows it")
		// Anyone can make a simulator key: unpinned, its evidence shows
		// nothing of which machine made it.
		if len(p.SimKeys) == 0 {
			r.Status = Warning
			r.Reasons = append(r.Reasons, "the policy pins no simulator key (sim_keys): anyone's simulator could have made this evidence; pin this machine's ('launch platform info' prints it) or set sim_keys = \"any\"")
		}
	}
	// Hardware evidence carries no time of its own: only the verifier's
	// nonce shows it is fresh. Without one it may be a replay of any age,
	// which max_age cannot catch.
	if r.Status == Affirming && issued.IsZero() && opts.Nonce == nil {
		r.Status = Warning
		r.Reasons = append(r.Reasons, "freshness not judged: "+env.Kind+" evidence carries no time, and no nonce was given to check")
	}
	return r
}
