package ampoule

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// LogCheck is what a tenant requires of a run's log beyond its
// integrity.
type LogCheck struct {
	// Policy, when set, judges the log's evidence as 'launch verify'
	// does; without it the evidence is only checked to be genuine.
	Policy *attest.Policy
	// Nonce, when set, must be the one the run's evidence carries, or
	// the KBS challenge's nonce that one binds (the one the tenant's
	// broker issued).
	Nonce []byte
	// Ref, when set, must be the log's: the reference the host showed.
	Ref string
	// TDXCollateral judges a TDX quote's TCB, with Policy.
	TDXCollateral *tdx.Collateral
}

// LogBinding is what a log's header was found bound to.
type LogBinding struct {
	// Envelope is the run's evidence the header carries.
	Envelope *tee.Envelope
	// KeyDigest is the SHA-256 of the runtime key that signed the log.
	KeyDigest [32]byte
	// Verdict is the policy's, or "" without one.
	Verdict attest.Status
	// Warnings say what the binding does not show.
	Warnings []string
}

// String says which evidence, nonce, time and key the log is bound to.
func (b *LogBinding) String() string {
	verdict := "not judged (no --policy)"
	if b.Verdict != "" {
		verdict = string(b.Verdict) + " under the policy"
	}
	return fmt.Sprintf("%s evidence issued %s, nonce %x, runtime key sha256:%x; %s",
		b.Envelope.Kind, b.Envelope.Issued.Format(time.RFC3339), b.Envelope.Nonce, b.KeyDigest[:8], verdict)
}

// LogReader reads a run's log, once its header is found bound to the
// run's evidence.
type LogReader struct {
	r *logging.Reader
	// Binding is what the header is bound to.
	Binding *LogBinding
}

// OpenLog opens a run's encrypted log for the tenant's identity and
// checks, before any record is read, who wrote it: the header's signature
// by the run's runtime key, that the run's evidence binds that key and
// the header's measurement and profile, and what check asks. Errors carry
// the log's registered codes (E1016-E1019, E1026, E1027, E3008).
func OpenLog(in io.Reader, id *logging.Identity, check LogCheck) (*LogReader, error) {
	r, err := logging.NewReader(in, id)
	if err != nil {
		return nil, logError(err)
	}
	b, err := checkBinding(r.Header(), check)
	if err != nil {
		return nil, err
	}
	return &LogReader{r: r, Binding: b}, nil
}

// Header is the log's header.
func (l *LogReader) Header() logging.Header { return l.r.Header() }

// Dropped is how many records the run dropped, as its end record says.
func (l *LogReader) Dropped() uint64 { return l.r.Dropped }

// Next returns the next record, or io.EOF at the log's end record; a log
// that ends without one is E1019.
func (l *LogReader) Next() (*logging.Record, error) {
	rec, err := l.r.Next()
	if err != nil && err != io.EOF {
		return nil, logError(err)
	}
	return rec, err
}

// checkBinding checks that a log's header, whose signature by its runtime
// key the reader has checked, is bound by the run's evidence: the envelope
// binds that key, the header's measurement and profile, and (when given)
// the nonce; the header is the run of the ref (when given); and the
// evidence is genuine, or with a policy not contraindicated by it. It is
// judged at the time the header says the log began, which the runtime key
// signed.
//
// A policy's warning is shown, not refused: the one Verify gives is that
// hardware evidence without the verifier's nonce may be old, and a log's
// evidence cannot be older than the runtime key made for its run; what
// stands against an older log is the ref or the nonce, and without either
// the tenant is told so.
func checkBinding(h logging.Header, check LogCheck) (*LogBinding, error) {
	env, err := tee.DecodeEnvelope(h.Envelope)
	if err != nil {
		return nil, errcode.Errorf(errcode.LogUnbound, "the log's evidence: %v", err)
	}
	b := &LogBinding{Envelope: env, KeyDigest: sha256.Sum256(h.RuntimeKey)}
	if check.Nonce != nil && kbsNonce(env, check.Nonce) {
		// The broker's challenge, which the evidence's nonce binds.
		check.Nonce = env.Nonce
	}
	switch {
	case !bytes.Equal(env.RuntimeKey, h.RuntimeKey):
		return nil, errcode.Errorf(errcode.LogUnbound, "the log is signed by runtime key sha256:%x, and its evidence binds another", b.KeyDigest[:8])
	case env.Measurement != h.Measurement || env.Profile != h.Profile:
		return nil, errcode.Errorf(errcode.LogUnbound, "the log says measurement %s, profile %s; its evidence binds measurement %s, profile %s", h.Measurement, h.Profile, env.Measurement, env.Profile)
	case check.Ref != "" && h.Ref != check.Ref:
		return nil, errcode.Errorf(errcode.LogOtherRun, "the log is of ref %s, not %s", h.Ref, check.Ref)
	case check.Nonce != nil && !bytes.Equal(env.Nonce, check.Nonce):
		return nil, errcode.Errorf(errcode.LogOtherRun, "the log's evidence carries nonce %x, not %x", env.Nonce, check.Nonce)
	}
	if err := b.judge(check, h.Started); err != nil {
		return nil, err
	}
	if check.Ref == "" && check.Nonce == nil {
		b.Warnings = append(b.Warnings, "nothing shows this is the log of the run you mean rather than an older one of the same bundle: give --ref (the reference the host showed) or --nonce")
	}
	if env.Kind == tee.KindSim || env.Insecure {
		b.Warnings = append(b.Warnings, "the evidence is the insecure simulator's, whose key is on the host: anyone there can forge this log")
	}
	return b, nil
}

// judge checks the log's evidence at the time the log began: against the
// policy, or without one only that it is genuine.
func (b *LogBinding) judge(check LogCheck, at time.Time) error {
	opts := attest.Options{Nonce: check.Nonce, TDXCollateral: check.TDXCollateral, Now: at}
	if check.Policy == nil {
		res := attest.Authentic(b.Envelope, opts)
		if res.Status == attest.Contraindicated {
			return errcode.Errorf(errcode.LogUnbound, "the log's evidence is not genuine %s evidence binding its runtime key: %s", b.Envelope.Kind, strings.Join(res.Reasons, "; "))
		}
		b.Warnings = append(b.Warnings, "the evidence was not judged (no --policy): any TEE, whatever it runs, or anyone with a simulator key could have made it and written this log")
		return nil
	}
	res := attest.Verify(b.Envelope, check.Policy, opts)
	if res.Status == attest.Contraindicated {
		return errcode.Errorf(errcode.EvidenceRefused, "the log's evidence: %s: %s", res.Status, strings.Join(res.Reasons, "; "))
	}
	b.Verdict = res.Status
	if res.Status == attest.Warning {
		b.Warnings = append(b.Warnings, res.Reasons...)
	}
	return nil
}

// logError maps a log reader's error to its registered code.
func logError(err error) error {
	switch {
	case errors.Is(err, logging.ErrUnsigned):
		return errcode.Wrap(errcode.LogUnbound, err)
	case errors.Is(err, logging.ErrWrongIdentity):
		return errcode.Wrap(errcode.LogWrongIdentity, err)
	case errors.Is(err, logging.ErrTampered):
		return errcode.Wrap(errcode.LogTampered, err)
	case errors.Is(err, logging.ErrTruncated):
		return errcode.Wrap(errcode.LogTruncated, err)
	}
	return errcode.Wrap(errcode.LogMalformed, err)
}

// kbsNonce reports whether env's nonce is the report nonce of a KBS
// session whose challenge was nonce, for env's runtime key: the broker's
// nonce of a run that asked its broker for a resource.
func kbsNonce(env *tee.Envelope, nonce []byte) bool {
	pub, err := ecdh.P256().NewPublicKey(env.RuntimeKey)
	if err != nil {
		return false
	}
	k, err := kbs.JWKFromECDH(pub)
	if err != nil {
		return false
	}
	h := kbs.RuntimeDataHash(base64.StdEncoding.EncodeToString(nonce), &k, "")
	return bytes.Equal(env.Nonce, h[:])
}
