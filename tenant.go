package ampoule

import (
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sealed"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/tdx"
	"github.com/ampoule-run/ampoule/vm"
)

// The tenant's own files: a verification policy, Intel's collateral for a
// TDX quote, evidence, a log identity; each read from a regular file, each
// failure a usage error of its own code naming the file.

// ReadPolicy reads a verification policy (TOML): E1023 policy-invalid if
// it cannot be read or does not parse.
func ReadPolicy(file string) (*attest.Policy, error) {
	return readAs(file, errcode.PolicyInvalid, "", attest.ParsePolicy)
}

// ReadTDXCollateral reads the collateral document 'launch collateral
// fetch' writes: E1022 evidence-malformed if it cannot be read or decoded.
func ReadTDXCollateral(file string) (*tdx.Collateral, error) {
	return readAs(file, errcode.EvidenceMalformed, "pass the JSON that 'launch collateral fetch' wrote", tdx.DecodeCollateral)
}

// VerifyEvidenceFile judges the evidence envelope in file against pol, as
// a relying party does: E1022 evidence-malformed if the file cannot be
// read or is not an envelope; otherwise the verdict, whatever it is.
func VerifyEvidenceFile(file string, pol *attest.Policy, opts attest.Options) (attest.Result, error) {
	env, err := readAs(file, errcode.EvidenceMalformed, "", tee.DecodeEnvelope)
	if err != nil {
		return attest.Result{}, err
	}
	return attest.Verify(env, pol, opts), nil
}

// readAs reads the regular file and decodes it; either failure is code's,
// a decoding one naming the file and with hint (if not empty).
func readAs[T any](file string, code errcode.Code, hint string, decode func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := regfile.ReadFile(file)
	if err != nil {
		return zero, errcode.Errorf(code, "%w", err)
	}
	v, err := decode(data)
	if err != nil {
		e := errcode.Errorf(code, "%s: %w", file, err)
		if hint != "" {
			e = e.WithHint(hint)
		}
		return zero, e
	}
	return v, nil
}

// ReadIdentity reads a tenant's log identity from file, or from stdin
// when file is "-" and stdin is not nil (at most 64 KiB): E1020
// identity-invalid if it cannot be read or parsed.
func ReadIdentity(file string, stdin io.Reader) (*logging.Identity, error) {
	var data []byte
	var err error
	if file == "-" && stdin != nil {
		file = "stdin"
		data, err = io.ReadAll(io.LimitReader(stdin, 1<<16))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, errcode.Errorf(errcode.IdentityInvalid, "%w", err)
	}
	id, err := logging.ParseIdentity(data)
	if err != nil {
		return nil, errcode.Errorf(errcode.IdentityInvalid, "%s: %w", file, err)
	}
	return id, nil
}

// OpenLogFile opens a log to read: file, or stdin when file is "" or "-".
// A file that cannot be opened is E1001 usage, the host's own input.
func OpenLogFile(file string, stdin io.Reader) (io.ReadCloser, error) {
	if file == "" || file == "-" {
		return io.NopCloser(stdin), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, errcode.Errorf(errcode.Usage, "%v", err).Host()
	}
	return f, nil
}

// WriteEnvelope writes an evidence envelope to a new file (never over an
// existing one, E1031), encoded as 'launch attest' prints it, for a
// verifier to judge later.
func WriteEnvelope(file string, env *tee.Envelope) error {
	data, err := env.Encode()
	if err != nil {
		return errcode.Errorf(errcode.Internal, "%v", err)
	}
	return WriteNewFile(file, append(data, '\n'), 0o644, "--envelope-out never overwrites a file; choose another")
}

// NewIdentityFile makes a tenant's log identity: the file to keep (as
// 'launch keygen' writes it, stamped with now) and the recipient that
// manifests name to have their logs encrypted to it.
func NewIdentityFile(now time.Time) (file []byte, recipient string, err error) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		return nil, "", errcode.Errorf(errcode.Internal, "generating a key: %v", err)
	}
	if file, err = id.Marshal(now); err != nil {
		return nil, "", errcode.Errorf(errcode.Internal, "%v", err)
	}
	return file, id.Recipient().String(), nil
}

// PolicyConfig says what a starter policy accepts: the profiles
// (production if none), the backends (sev-snp and tdx if none; "snp" as a
// run names it is sev-snp), the simulator only with AllowInsecure, and the
// simulator key file whose key it pins (DefaultSimKey if empty).
type PolicyConfig struct {
	Profiles, Backends []string
	AllowInsecure      bool
	SimKey             string
	// VM, if set, is a guest directory 'launch vm build --firmware' wrote,
	// whose launch measurement and init-data digests the policy pins.
	VM string
}

// PolicyTemplate is the starter policy for the bundle at path: its
// measurement under each profile cfg names, which the manifest must
// allow (E1005), the backends, and this machine's simulator key pinned
// where the simulator is accepted. A backend it does not know, the
// simulator without AllowInsecure, and a SimKey for a policy that does
// not accept the simulator are usage errors.
func PolicyTemplate(path string, cfg PolicyConfig) (attest.Template, error) {
	profs, backends := cfg.Profiles, cfg.Backends
	if len(profs) == 0 {
		profs = []string{"production"}
	}
	if len(backends) == 0 {
		backends = []string{tee.KindSNP, tee.KindTDX}
	}
	t := attest.Template{Profiles: profs, AllowInsecure: cfg.AllowInsecure}
	for _, name := range backends {
		kind, ok := tee.ParseKind(name)
		if !ok {
			return t, errcode.Errorf(errcode.Usage, "--backend %q is not sev-snp, tdx or sim", name)
		}
		if kind == tee.KindSim && !cfg.AllowInsecure {
			return t, errcode.Errorf(errcode.Usage, "--backend sim needs --allow-insecure").WithHint("the simulator protects nothing; say so explicitly")
		}
		t.Backends = append(t.Backends, kind)
	}
	if cfg.SimKey != "" && !slices.Contains(t.Backends, tee.KindSim) {
		return t, errcode.Errorf(errcode.Usage, "--sim-key names the simulator key to pin, and the policy does not accept the simulator").WithHint("add --backend sim --allow-insecure, or drop --sim-key")
	}
	var pins *vm.Pins
	if cfg.VM != "" {
		var err error
		if pins, err = vm.ReadPins(cfg.VM); err != nil {
			return t, err
		}
		t.VM = &attest.VMPins{SNPLaunchMeasurements: pins.Launch.SNPLaunchMeasurements, TDXMRTDs: pins.Launch.TDXMRTDs, SNPHostData: hex.EncodeToString(pins.HostData[:]), TDXMRConfigID: hex.EncodeToString(pins.MRConfigID[:]),
			Inputs: pins.Launch.Inputs()}
		if r := pins.Launch.TDXRTMRs; r != nil {
			t.VM.TDXRTMRs = [3]string{"", r.RTMR1, r.RTMR2}
			t.VM.RTMRNotes = append([]string{"Checked: " + r.Checked + "."}, r.Unpinned...)
		}
	}
	b, err := loader.Open(path)
	if err != nil {
		return t, err
	}
	t.Bundle, t.Version = b.Manifest.Name, b.Manifest.Version
	// Exactly the secrets the manifest declares, granted to its
	// measurements.
	t.Secrets = slices.Compact(slices.Sorted(maps.Values(b.Manifest.Secrets)))
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
	// The VM pinned runs this bundle under one of the profiles, or the
	// policy would accept nothing (or another bundle's VM).
	if pins != nil && !slices.Contains(t.Measurements, attest.ProfileMeasurement{Profile: pins.InitData.Profile, Measurement: pins.InitData.Measurement}) {
		return t, errcode.Errorf(errcode.InitDataOtherBundle, "the VM in %s runs the measurement %s under %s, not %s under any of %s", cfg.VM, pins.InitData.Measurement, pins.InitData.Profile, b.Source, strings.Join(profs, ", ")).
			WithHint("build the VM for this bundle with 'launch vm build --firmware FILE --profile P', P one of the policy's profiles")
	}
	if slices.Contains(t.Backends, tee.KindSim) {
		be, err := OpenBackend(tee.KindSim, cfg.SimKey)
		if err != nil {
			return t, err
		}
		t.SimPin = hex.EncodeToString(be.(*sim.Backend).PublicKey())
	}
	return t, nil
}

// PlatformInfo is what this machine offers a run: the attestation devices
// found (empty: missing), the TEE it is a guest of ("" for none), the
// memory-backed directory a sealed mount's plaintext would live in, and
// its simulator key ("" until the first simulator run makes one).
type PlatformInfo struct {
	TEE             string `json:"tee"`
	SEVGuest        string `json:"sev_guest"`
	TDXGuest        string `json:"tdx_guest"`
	ConfigfsTSM     string `json:"configfs_tsm"`
	ConfigfsRTMRs   string `json:"configfs_rtmrs"`
	SealedWorkspace string `json:"sealed_workspace"`
	SimKey          string `json:"sim_key"`
}

// Platform probes this machine. simKey names the simulator key file
// (DefaultSimKey if empty); it is read, never made, here.
func Platform(simKey string) (PlatformInfo, error) {
	exists := func(path string) bool { _, err := os.Stat(path); return err == nil }
	p := tee.Probe(exists)
	info := PlatformInfo{TEE: p.Kind(), SEVGuest: p.SEVGuest, TDXGuest: p.TDXGuest, ConfigfsTSM: p.ConfigfsTSM, ConfigfsRTMRs: p.ConfigfsRTMRs}
	for _, b := range sealed.WorkspaceBases() {
		if sealed.MemoryBacked(b) {
			info.SealedWorkspace = b
			break
		}
	}
	if simKey == "" {
		simKey, _ = DefaultSimKey()
	}
	if simKey != "" && exists(simKey) {
		be, err := OpenBackend(tee.KindSim, simKey)
		if err != nil {
			return info, err
		}
		info.SimKey = hex.EncodeToString(be.(*sim.Backend).PublicKey())
	}
	return info, nil
}

// FetchTDXCollateral asks Intel's PCS (pcsURL empty), or a mirror serving
// its paths, for the collateral that judges the TCB of the TDX quote in
// quoteFile, and returns it as the JSON document ReadTDXCollateral reads.
// An unreadable file or a quote that does not parse is E1022
// evidence-malformed, a PCS that does not answer well
// E1024 collateral-unavailable.
func FetchTDXCollateral(quoteFile, pcsURL string) ([]byte, error) {
	raw, err := regfile.ReadFile(quoteFile)
	if err != nil {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%w", err)
	}
	coll, err := tdx.FetchCollateral(raw, pcsURL, nil)
	if errors.Is(err, tdx.ErrQuote) {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%s: %w", quoteFile, err)
	}
	if err != nil {
		return nil, errcode.Errorf(errcode.CollateralUnavailable, "%w", err)
	}
	data, err := coll.Encode()
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "%w", err)
	}
	return append(data, '\n'), nil
}
