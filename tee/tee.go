// Package tee is the boundary to the trusted execution environment: the
// Backend a run attests through, the binding of a measurement into the
// hardware's report data, and the evidence envelope a verifier reads.
//
// Backends live in subpackages: tee/sim (a software simulator that says it
// is insecure everywhere), and the SEV-SNP and TDX backends behind the same
// interface.
package tee

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ampoule-run/ampoule/internal/strictjson"
)

// ReportDataDomain separates Ampoule's report data from every other hash.
const ReportDataDomain = "ampoule/report-data/v1"

// ReportData binds a run to its evidence:
//
//	SHA-512("ampoule/report-data/v1" ‖ measurement ‖ runtime_public_key ‖ nonce)
//
// 64 bytes: SEV-SNP's REPORT_DATA and TDX's REPORTDATA.
func ReportData(measurement [48]byte, runtimeKey, nonce []byte) [64]byte {
	h := sha512.New()
	h.Write([]byte(ReportDataDomain))
	h.Write(measurement[:])
	h.Write(runtimeKey)
	h.Write(nonce)
	var out [64]byte
	h.Sum(out[:0])
	return out
}

// Evidence is what a backend produced for some report data.
type Evidence struct {
	// Raw is the hardware report or quote, or the simulator's statement.
	Raw []byte
	// Collateral is what a verifier needs beside Raw: certificates, or the
	// simulator's public key.
	Collateral [][]byte
}

// Backend produces evidence from inside a TEE.
type Backend interface {
	// Name is the backend's kind: KindSim, KindSNP or KindTDX.
	Name() string
	// Insecure reports whether nothing protects a run from the host.
	Insecure() bool
	// Attest returns evidence carrying reportData.
	Attest(ctx context.Context, reportData [64]byte) (Evidence, error)
	// SealingKey returns a 32-byte key bound to the measurement, the same
	// on every run of that measurement on this platform.
	SealingKey(ctx context.Context, measurement [48]byte) ([]byte, error)
}

// KeyDeriver is a Backend that derives keys of its own for a measurement,
// one per label: SealingKey is the key labelled "sealing"; the
// compilation cache's MAC key is another. A key is the same on every run
// of the measurement on this platform, and a key of one label tells
// nothing of another's.
type KeyDeriver interface {
	DeriveKey(ctx context.Context, measurement [48]byte, label string) ([]byte, error)
}

// EnvelopeVersion is the envelope format this package writes and reads.
const EnvelopeVersion = 1

// MaxEnvelope bounds an envelope's encoded size.
const MaxEnvelope = 1 << 20

// Envelope is the evidence document a run hands a verifier: everything
// needed to recompute the report data and check it against a policy.
type Envelope struct {
	Version     int       `json:"version"`
	Kind        string    `json:"kind"`
	Insecure    bool      `json:"insecure"`
	Evidence    []byte    `json:"evidence"`
	Collateral  [][]byte  `json:"collateral"`
	Measurement string    `json:"measurement"`
	Profile     string    `json:"profile"`
	RuntimeKey  []byte    `json:"runtime_public_key"`
	Nonce       []byte    `json:"nonce"`
	Issued      time.Time `json:"issued"`
	// Event, if set, records the run's measurement extended into a runtime
	// measurement register (TDX: RTMR3) just before the evidence was taken.
	Event *Event `json:"event,omitempty"`
	// InitData, if set, is the init-data document the run's VM was
	// launched with (its SHA-256 the SEV-SNP report's HOST_DATA, its
	// SHA-384 the TDX quote's MRCONFIGID), so that a verifier can check
	// the document against the report and the run against the document.
	InitData []byte `json:"init_data,omitempty"`
}

// EventDomain separates Ampoule's register events from every other hash.
const EventDomain = "ampoule/rtmr/v1"

// EventDigest is what a run extends a register with:
//
//	SHA-384("ampoule/rtmr/v1" ‖ measurement)
func EventDigest(measurement [48]byte) [48]byte {
	h := sha512.New384()
	h.Write([]byte(EventDomain))
	h.Write(measurement[:])
	var out [48]byte
	h.Sum(out[:0])
	return out
}

// Event is one extension of a runtime measurement register. A verifier
// checks that SHA-384(Before ‖ Digest) is the register's value in the
// evidence: then the last extension before the evidence was Digest,
// whatever Before is (it needs no trust; only the hash's second-preimage
// resistance).
type Event struct {
	Register int    `json:"register"`
	Before   []byte `json:"before"`
	Digest   []byte `json:"digest"`
}

// After is the register's value once Digest is extended into Before.
func (e *Event) After() [48]byte {
	var out [48]byte
	h := sha512.New384()
	h.Write(e.Before)
	h.Write(e.Digest)
	h.Sum(out[:0])
	return out
}

// Extender is a backend that can extend a run's measurement into a runtime
// measurement register and attest, as one step no other run interleaves.
type Extender interface {
	AttestExtended(ctx context.Context, measurement [48]byte, reportData [64]byte) (Evidence, *Event, error)
}

// Encode returns the envelope as indented JSON.
func (e *Envelope) Encode() ([]byte, error) {
	return json.MarshalIndent(e, "", "  ")
}

// ErrEnvelope wraps every reason an envelope cannot be read.
var ErrEnvelope = errors.New("not a valid evidence envelope")

// DecodeEnvelope reads an envelope strictly: unknown fields, a second
// document, a missing field or a wrong version are errors.
func DecodeEnvelope(data []byte) (*Envelope, error) {
	if len(data) > MaxEnvelope {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrEnvelope, len(data), MaxEnvelope)
	}
	var e Envelope
	if err := strictjson.Decode(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEnvelope, err)
	}
	switch {
	case e.Version != EnvelopeVersion:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrEnvelope, e.Version, EnvelopeVersion)
	case e.Kind == "":
		return nil, fmt.Errorf("%w: no kind", ErrEnvelope)
	case len(e.Evidence) == 0:
		return nil, fmt.Errorf("%w: no evidence", ErrEnvelope)
	case e.Profile == "":
		return nil, fmt.Errorf("%w: no profile", ErrEnvelope)
	case len(e.Nonce) == 0 || len(e.Nonce) > 64:
		return nil, fmt.Errorf("%w: the nonce is %d bytes (1 to 64)", ErrEnvelope, len(e.Nonce))
	case e.Issued.IsZero():
		return nil, fmt.Errorf("%w: no issue time", ErrEnvelope)
	case e.Event != nil && (e.Event.Register < 0 || e.Event.Register > 3 || len(e.Event.Before) != 48 || len(e.Event.Digest) != 48):
		return nil, fmt.Errorf("%w: the event needs a register 0 to 3 and 48-byte before and digest", ErrEnvelope)
	}
	if _, err := e.MeasurementBytes(); err != nil {
		return nil, err
	}
	return &e, nil
}

// MeasurementBytes decodes the envelope's measurement.
func (e *Envelope) MeasurementBytes() ([48]byte, error) {
	var m [48]byte
	b, err := hex.DecodeString(e.Measurement)
	if err != nil || len(b) != 48 {
		return m, fmt.Errorf("%w: the measurement is not 96 hex digits", ErrEnvelope)
	}
	copy(m[:], b)
	return m, nil
}

// ReportData recomputes the report data the evidence must carry.
func (e *Envelope) ReportData() ([64]byte, error) {
	m, err := e.MeasurementBytes()
	if err != nil {
		return [64]byte{}, err
	}
	return ReportData(m, e.RuntimeKey, e.Nonce), nil
}

// Platform is what a machine offers for attestation.
type Platform struct {
	// SEVGuest, TDXGuest and ConfigfsTSM are the device paths found;
	// ConfigfsRTMRs is where a TDX guest's kernel offers RTMR extension.
	SEVGuest, TDXGuest, ConfigfsTSM, ConfigfsRTMRs string
}

// Device paths a backend may use.
const (
	SEVGuestDevice = "/dev/sev-guest"
	TDXGuestDevice = "/dev/tdx_guest"
	ConfigfsTSM    = "/sys/kernel/config/tsm/report"
	ConfigfsRTMRs  = "/sys/kernel/config/tsm/rtmrs"
)

// Probe looks for the attestation devices of this machine. exists is
// os.Stat in production and a fake in tests.
func Probe(exists func(string) bool) Platform {
	var p Platform
	if exists(SEVGuestDevice) {
		p.SEVGuest = SEVGuestDevice
	}
	if exists(TDXGuestDevice) {
		p.TDXGuest = TDXGuestDevice
	}
	if exists(ConfigfsTSM) {
		p.ConfigfsTSM = ConfigfsTSM
	}
	if exists(ConfigfsRTMRs) {
		p.ConfigfsRTMRs = ConfigfsRTMRs
	}
	return p
}

// Kind is the hardware TEE the platform offers, or "" for none.
func (p Platform) Kind() string {
	switch {
	case p.SEVGuest != "":
		return KindSNP
	case p.TDXGuest != "":
		return KindTDX
	}
	return ""
}
