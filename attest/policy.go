package attest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/ampoule-run/ampoule/internal/resource"

	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// Policy is what a tenant accepts. ParsePolicy reads one from its TOML
// form, decoding every value once; a Policy built in Go holds the same
// typed values, and Verify reads nothing else. An unset pin is not
// checked; nothing is decoded at verification time, so no value can be
// silently misread there.
type Policy struct {
	// Measurements are the reference values (SHA-384) a run may have
	// (TOML: measurements, hex).
	Measurements [][48]byte
	// Profiles a run may have run under (TOML: profiles).
	Profiles []string
	// Backends the evidence may come from: "sev-snp", "tdx", "sim"
	// (TOML: backends).
	Backends []string
	// AllowInsecure accepts the simulator, which protects nothing (TOML:
	// allow_insecure).
	AllowInsecure bool
	// SimKeys pins the simulator keys (Ed25519) accepted (TOML: sim_keys,
	// a list of hex keys). When it is not empty, simulator evidence must
	// be signed by one of them, whatever SimKeysAny says.
	SimKeys []ed25519.PublicKey
	// SimKeysAny, with SimKeys empty, accepts any simulator key: anyone's
	// (TOML: sim_keys = "any"). A policy accepting the simulator with
	// neither judges its evidence a warning at best (SimUnpinned), and the
	// broker refuses to serve it.
	SimKeysAny bool
	// MaxAge bounds how old evidence that carries a time (the simulator's)
	// may be (TOML: max_age, a Go duration). Zero, as in a Policy built in
	// Go that sets none, means DefaultMaxAge; a negative one accepts no
	// evidence that carries a time.
	MaxAge time.Duration
	// AllowDebug accepts a TEE whose debug policy bit is set (a host could
	// then read the guest's memory) (TOML: allow_debug).
	AllowDebug bool
	// SNPProduct is the AMD processor line SEV-SNP evidence comes from
	// ("Milan", "Genoa", "Turin", optionally with a stepping "-B1") (TOML:
	// snp_product).
	SNPProduct string
	// SNPMinTCB, if set, is the lowest SEV-SNP TCB (reported, the one the
	// VCEK was issued for) accepted (TOML: the table snp_min_tcb).
	SNPMinTCB *snp.TCB
	// SNPLaunchMeasurements, if not empty, are the SEV-SNP launch
	// measurements (SHA-384 of the guest's initial image: firmware, kernel,
	// command line) accepted (TOML: snp_launch_measurements, hex).
	SNPLaunchMeasurements [][48]byte
	// SNPHostData, if set, is the HOST_DATA the guest must have been
	// launched with (TOML: snp_host_data, hex).
	SNPHostData *[32]byte
	// TDXMinTeeTcbSvn, if not empty, is the lowest TDX TEE_TCB_SVN
	// accepted, compared byte by byte: each of its bytes is the lowest the
	// quote's byte at that place may be, and a quote with fewer bytes is
	// refused (TOML: tdx_min_tee_tcb_svn, 1 to 16 bytes of hex).
	TDXMinTeeTcbSvn []byte
	// TDXMRTDs, if not empty, are the TD measurements (SHA-384 of the TD's
	// initial image) accepted (TOML: tdx_mrtds, hex).
	TDXMRTDs [][48]byte
	// TDXMRConfigID, if set, is the MRCONFIGID the TD must have been
	// launched with (TOML: tdx_mr_config_id, hex).
	TDXMRConfigID *[48]byte
	// TDXRTMRs pin RTMR0 to RTMR2 (firmware configuration, loader and
	// kernel, OS); a nil one is not checked (TOML: the table tdx_rtmrs,
	// keys rtmr0 to rtmr2, hex). RTMR3 is the runtime's: see
	// TDXRequireRTMR.
	TDXRTMRs [3]*[48]byte
	// TDXRequireRTMR refuses TDX evidence that does not show the run's
	// measurement extended into RTMR3 as the last event before the quote
	// (TOML: tdx_require_rtmr).
	TDXRequireRTMR bool
	// TDXTDAttributes, if set, requires TDATTRIBUTES & Mask == Value & Mask
	// (TOML: tdx_td_attributes and tdx_td_attributes_mask, which go
	// together).
	TDXTDAttributes *TDAttributes
	// TDXRequireTCBUpToDate refuses TDX evidence whose TCB status was not
	// judged with Intel's collateral (which accepts only up to date)
	// (TOML: tdx_require_tcb_up_to_date).
	TDXRequireTCBUpToDate bool
	// Grants say which runs a broker serving the policy releases which of
	// its stored resources to (TOML: the array of tables grants). Evidence
	// the policy affirms reads a resource only if a grant names both; the
	// sealing key, derived for each measurement, needs none.
	Grants []Grant
	// Bundles groups measurements by bundle name (TOML: the table bundles,
	// each key a bundle's name and its value the hex measurements of its
	// versions, every one also in measurements, none in two bundles). A
	// broker derives one sealing key for a bundle, which every measurement
	// listed for it obtains, so that a later version opens an earlier
	// one's store; a measurement in no bundle has a key of its own.
	Bundles map[string][][48]byte
}

// Grant gives resources to runs of some measurements, under some profiles,
// on some backends. ParsePolicy accepts only a grant whose resources are
// resource paths and whose measurements, profiles and backends are among
// the policy's own, so that no grant names a run the policy refuses.
type Grant struct {
	// Resources are resource paths, REPO/TYPE/TAG (TOML: resources).
	Resources []string
	// Measurements are the runs the grant is for; at least one (TOML:
	// measurements, hex).
	Measurements [][48]byte
	// Profiles and Backends, if not empty, narrow the grant to runs under
	// those profiles, on those backends; empty, they are the policy's
	// (TOML: profiles, backends).
	Profiles []string
	Backends []string
	// Insecure gives the resources to evidence a host can make or read as
	// well, the simulator's or a TEE's with its debug bit set (classes
	// other than "hardware", see Result.Class), where the policy accepts
	// such evidence at all (TOML: insecure). Without it they go to hardware
	// evidence alone, whatever else the policy accepts.
	Insecure bool
}

// MaxGrants bounds a policy's grants, and the resources of one grant.
const MaxGrants = 256

// Granted reports whether a grant of p gives the resource at path to a run
// of measurement m under profile on backend, whose evidence p affirmed of
// class (Result.Class).
func (p *Policy) Granted(path string, m [48]byte, profile, backend, class string) bool {
	for _, g := range p.Grants {
		if slices.Contains(g.Resources, path) && slices.Contains(g.Measurements, m) &&
			(len(g.Profiles) == 0 || slices.Contains(g.Profiles, profile)) &&
			(len(g.Backends) == 0 || slices.Contains(g.Backends, backend)) &&
			(class == ClassHardware || g.Insecure) {
			return true
		}
	}
	return false
}

// MaxBundleName bounds a name in a policy's [bundles], as a manifest's
// name is bounded.
const MaxBundleName = 64

// BundleOf is the bundle of Bundles that lists m, if one does.
func (p *Policy) BundleOf(m [48]byte) (string, bool) {
	for name, ms := range p.Bundles {
		if slices.Contains(ms, m) {
			return name, true
		}
	}
	return "", false
}

// TDAttributes is a TDX TDATTRIBUTES requirement, the 8 bytes as the quote
// holds them: SEPT_VE_DISABLE (bit 28) set and MIGRATABLE (bit 29) clear,
// say, with Mask 0000003000000000 and Value 0000001000000000 in hex.
type TDAttributes struct {
	Value, Mask [8]byte
}

// AnySimKey, as sim_keys = "any", accepts the evidence of any simulator
// key: anyone's.
const AnySimKey = "any"

// SimUnpinned reports whether p accepts the simulator's evidence without
// pinning which simulator keys it accepts (nor saying sim_keys = "any").
func (p *Policy) SimUnpinned() bool {
	return p.AllowInsecure && slices.Contains(p.Backends, sim.Kind) && len(p.SimKeys) == 0 && !p.SimKeysAny
}

// maxAge is the bound on evidence's age p sets, DefaultMaxAge when unset.
func (p *Policy) maxAge() time.Duration {
	if p.MaxAge == 0 {
		return DefaultMaxAge
	}
	return p.MaxAge
}

// DefaultMaxAge is a policy's max_age when it sets none.
const DefaultMaxAge = 5 * time.Minute

// ErrPolicy wraps every reason a policy cannot be read.
var ErrPolicy = errors.New("invalid policy")

// policyFile is a policy's TOML form, as tenants write it: every value as
// written, decoded into a Policy by decode.
type policyFile struct {
	Measurements          []string            `toml:"measurements"`
	Profiles              []string            `toml:"profiles"`
	Backends              []string            `toml:"backends"`
	AllowInsecure         bool                `toml:"allow_insecure"`
	SimKeys               simKeysFile         `toml:"sim_keys"`
	MaxAge                string              `toml:"max_age"`
	AllowDebug            bool                `toml:"allow_debug"`
	SNPProduct            string              `toml:"snp_product"`
	SNPMinTCB             *snp.TCB            `toml:"snp_min_tcb"`
	TDXMinTeeTcbSvn       string              `toml:"tdx_min_tee_tcb_svn"`
	SNPLaunchMeasurements []string            `toml:"snp_launch_measurements"`
	SNPHostData           string              `toml:"snp_host_data"`
	TDXMRTDs              []string            `toml:"tdx_mrtds"`
	TDXMRConfigID         string              `toml:"tdx_mr_config_id"`
	TDXRTMRs              *rtmrsFile          `toml:"tdx_rtmrs"`
	TDXRequireRTMR        bool                `toml:"tdx_require_rtmr"`
	TDXTDAttributes       string              `toml:"tdx_td_attributes"`
	TDXTDAttributesMask   string              `toml:"tdx_td_attributes_mask"`
	TDXRequireTCBUpToDate bool                `toml:"tdx_require_tcb_up_to_date"`
	Bundles               map[string][]string `toml:"bundles"`
	Grants                []grantFile         `toml:"grants"`
}

// grantFile is one [[grants]] table as written.
type grantFile struct {
	Resources    []string `toml:"resources"`
	Measurements []string `toml:"measurements"`
	Profiles     []string `toml:"profiles"`
	Backends     []string `toml:"backends"`
	Insecure     bool     `toml:"insecure"`
}

// rtmrsFile is the table tdx_rtmrs; an empty value is not checked.
type rtmrsFile struct {
	RTMR0 string `toml:"rtmr0"`
	RTMR1 string `toml:"rtmr1"`
	RTMR2 string `toml:"rtmr2"`
}

// simKeysFile is sim_keys: a list of hex keys, or the string "any".
type simKeysFile []string

// UnmarshalText reads the string form, which can only be "any" (a list is
// read as a list).
func (k *simKeysFile) UnmarshalText(text []byte) error {
	if string(text) != AnySimKey {
		return fmt.Errorf("a list of simulator keys, or %q, not %q", AnySimKey, text)
	}
	*k = simKeysFile{AnySimKey}
	return nil
}

// ParsePolicy reads a policy strictly: unknown keys and wrong types are
// errors, it must name at least one measurement, profile and backend, and
// every hex value and duration is decoded here, an error naming its key.
// Every error wraps ErrPolicy.
func ParsePolicy(data []byte) (*Policy, error) {
	var f policyFile
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
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
	case len(f.Measurements) == 0:
		return nil, fmt.Errorf("%w: measurements: list at least one reference measurement", ErrPolicy)
	case len(f.Profiles) == 0:
		return nil, fmt.Errorf("%w: profiles: list at least one profile", ErrPolicy)
	case len(f.Backends) == 0:
		return nil, fmt.Errorf("%w: backends: list at least one backend", ErrPolicy)
	}
	p := &Policy{
		Profiles: f.Profiles, Backends: f.Backends, AllowInsecure: f.AllowInsecure, AllowDebug: f.AllowDebug,
		SNPProduct: f.SNPProduct, SNPMinTCB: f.SNPMinTCB, TDXRequireRTMR: f.TDXRequireRTMR, TDXRequireTCBUpToDate: f.TDXRequireTCBUpToDate,
	}
	var err error
	if p.Measurements, err = digests("measurements", f.Measurements); err != nil {
		return nil, err
	}
	for _, b := range f.Backends {
		if b != snp.Kind && b != tdx.Kind && b != sim.Kind {
			return nil, fmt.Errorf("%w: backends: %q is not sev-snp, tdx or sim", ErrPolicy, b)
		}
	}
	if err := f.decodeHex(p); err != nil {
		return nil, err
	}
	if err := f.decodeBundles(p); err != nil {
		return nil, err
	}
	if p.Grants, err = f.decodeGrants(p); err != nil {
		return nil, err
	}
	p.MaxAge = DefaultMaxAge
	if f.MaxAge != "" {
		d, err := time.ParseDuration(f.MaxAge)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: max_age: %q is not a positive duration", ErrPolicy, f.MaxAge)
		}
		p.MaxAge = d
	}
	return p, nil
}

// decodeHex decodes f's hex values other than the measurements into p,
// the first bad one an error naming its key.
func (f *policyFile) decodeHex(p *Policy) error {
	if f.TDXMinTeeTcbSvn != "" {
		b, err := hex.DecodeString(f.TDXMinTeeTcbSvn)
		if err != nil || len(b) == 0 || len(b) > 16 {
			return fmt.Errorf("%w: tdx_min_tee_tcb_svn: %q is not 1 to 16 bytes of hex", ErrPolicy, f.TDXMinTeeTcbSvn)
		}
		p.TDXMinTeeTcbSvn = b
	}
	var err error
	if p.SNPLaunchMeasurements, err = digests("snp_launch_measurements", f.SNPLaunchMeasurements); err != nil {
		return err
	}
	if p.TDXMRTDs, err = digests("tdx_mrtds", f.TDXMRTDs); err != nil {
		return err
	}
	if f.SNPHostData != "" {
		p.SNPHostData = new([32]byte)
		if err := hexInto(p.SNPHostData[:], "snp_host_data", f.SNPHostData); err != nil {
			return err
		}
	}
	if f.TDXMRConfigID != "" {
		p.TDXMRConfigID = new([48]byte)
		if err := hexInto(p.TDXMRConfigID[:], "tdx_mr_config_id", f.TDXMRConfigID); err != nil {
			return err
		}
	}
	if (f.TDXTDAttributes == "") != (f.TDXTDAttributesMask == "") {
		return fmt.Errorf("%w: tdx_td_attributes and tdx_td_attributes_mask go together", ErrPolicy)
	}
	if f.TDXTDAttributes != "" {
		p.TDXTDAttributes = new(TDAttributes)
		if err := hexInto(p.TDXTDAttributes.Value[:], "tdx_td_attributes", f.TDXTDAttributes); err != nil {
			return err
		}
		if err := hexInto(p.TDXTDAttributes.Mask[:], "tdx_td_attributes_mask", f.TDXTDAttributesMask); err != nil {
			return err
		}
	}
	if f.TDXRTMRs != nil {
		for i, v := range []string{f.TDXRTMRs.RTMR0, f.TDXRTMRs.RTMR1, f.TDXRTMRs.RTMR2} {
			if v != "" {
				p.TDXRTMRs[i] = new([48]byte)
				if err := hexInto(p.TDXRTMRs[i][:], fmt.Sprintf("tdx_rtmrs.rtmr%d", i), v); err != nil {
					return err
				}
			}
		}
	}
	return f.decodeSimKeys(p)
}

// decodeGrants decodes f's grants, each checked against what p accepts.
func (f *policyFile) decodeGrants(p *Policy) ([]Grant, error) {
	if len(f.Grants) > MaxGrants {
		return nil, fmt.Errorf("%w: grants: %d of them; at most %d", ErrPolicy, len(f.Grants), MaxGrants)
	}
	var out []Grant
	for i, gf := range f.Grants {
		key := fmt.Sprintf("grants[%d]", i)
		if len(gf.Resources) == 0 || len(gf.Resources) > MaxGrants {
			return nil, fmt.Errorf("%w: %s.resources: list 1 to %d resource paths", ErrPolicy, key, MaxGrants)
		}
		for _, r := range gf.Resources {
			if _, err := resource.Parse(r); err != nil {
				return nil, fmt.Errorf("%w: %s.resources: %v", ErrPolicy, key, err)
			}
			if r == resource.SealingKey {
				return nil, fmt.Errorf("%w: %s.resources: %s is the sealing key, which the broker derives for every measurement the policy affirms; grant it nothing", ErrPolicy, key, r)
			}
		}
		if len(gf.Measurements) == 0 {
			return nil, fmt.Errorf("%w: %s.measurements: list the measurements the resources are for", ErrPolicy, key)
		}
		ms, err := digests(key+".measurements", gf.Measurements)
		if err != nil {
			return nil, err
		}
		for j, m := range ms {
			if !slices.Contains(p.Measurements, m) {
				return nil, fmt.Errorf("%w: %s.measurements: %s is not among the policy's measurements, so no run of it is affirmed", ErrPolicy, key, gf.Measurements[j])
			}
		}
		for _, pr := range gf.Profiles {
			if !slices.Contains(p.Profiles, pr) {
				return nil, fmt.Errorf("%w: %s.profiles: %q is not among the policy's profiles", ErrPolicy, key, pr)
			}
		}
		for _, b := range gf.Backends {
			if !slices.Contains(p.Backends, b) {
				return nil, fmt.Errorf("%w: %s.backends: %q is not among the policy's backends", ErrPolicy, key, b)
			}
		}
		out = append(out, Grant{Resources: gf.Resources, Measurements: ms, Profiles: gf.Profiles, Backends: gf.Backends, Insecure: gf.Insecure})
	}
	return out, nil
}

// decodeBundles decodes [bundles]: names as a manifest's are (1 to 64 of
// a-z, 0-9, '.', '_', '-'), each with at least one measurement, every one
// of them in measurements and in no other bundle.
func (f *policyFile) decodeBundles(p *Policy) error {
	owner := map[[48]byte]string{}
	for name, list := range f.Bundles {
		key := "bundles." + name
		if !validBundleName(name) {
			return fmt.Errorf("%w: %s: %q is not a bundle name (1 to %d of a-z, 0-9, '.', '_', '-')", ErrPolicy, key, name, MaxBundleName)
		}
		ms, err := digests(key, list)
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return fmt.Errorf("%w: %s: list the measurements of the bundle's versions", ErrPolicy, key)
		}
		for _, m := range ms {
			if !slices.Contains(p.Measurements, m) {
				return fmt.Errorf("%w: %s: %x is not in measurements, so no run of it is affirmed", ErrPolicy, key, m[:])
			}
			if other, dup := owner[m]; dup {
				return fmt.Errorf("%w: %s: %x is listed for bundle %q too; a measurement belongs to one bundle, whose key it gets", ErrPolicy, key, m[:], other)
			}
			owner[m] = name
		}
		if p.Bundles == nil {
			p.Bundles = map[string][][48]byte{}
		}
		p.Bundles[name] = ms
	}
	return nil
}

func validBundleName(s string) bool {
	if len(s) == 0 || len(s) > MaxBundleName {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// decodeSimKeys decodes sim_keys: "any" (or a list of "any" alone), or
// hex Ed25519 public keys.
func (f *policyFile) decodeSimKeys(p *Policy) error {
	if len(f.SimKeys) == 1 && f.SimKeys[0] == AnySimKey {
		p.SimKeysAny = true
		return nil
	}
	for _, k := range f.SimKeys {
		b, err := hex.DecodeString(k)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: sim_keys: %q is not 64 hex digits (a list of keys, or the string %q alone)", ErrPolicy, k, AnySimKey)
		}
		p.SimKeys = append(p.SimKeys, ed25519.PublicKey(b))
	}
	return nil
}

// digests decodes a list of hex SHA-384 values; nil for none.
func digests(key string, list []string) ([][48]byte, error) {
	var out [][48]byte
	for _, s := range list {
		var d [48]byte
		if err := hexInto(d[:], key, s); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// hexInto decodes s, which must be exactly len(dst) bytes of hex, into dst.
func hexInto(dst []byte, key, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("%w: %s: %q is not %d hex digits", ErrPolicy, key, s, 2*len(dst))
	}
	copy(dst, b)
	return nil
}
