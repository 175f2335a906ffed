// Package sim is the software simulator backend: evidence of the same
// envelope shape as a TEE's, signed with a local Ed25519 key, and marked
// insecure in the evidence itself and everywhere it is shown. Nothing
// protects a simulated run from the host: it is for local work and tests.
package sim

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ampoule-run/ampoule/tee"
)

// Kind is the simulator's evidence kind.
const Kind = tee.KindSim

// statementKind names the signed statement's format.
const statementKind = "ampoule-sim-statement/v1"

// Backend signs statements with a local key.
type Backend struct {
	key ed25519.PrivateKey
	now func() time.Time
}

// New returns a simulator that signs with key.
func New(key ed25519.PrivateKey) *Backend { return &Backend{key: key, now: time.Now} }

// LoadOrCreate reads the simulator's key from path (a 32-byte Ed25519 seed,
// mode 0600), making it first if it does not exist.
func LoadOrCreate(path string) (*Backend, error) {
	seed, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		seed = make([]byte, ed25519.SeedSize)
		rand.Read(seed)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		_, werr := f.Write(seed)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, werr
		}
	} else if err != nil {
		return nil, err
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: a simulator key is %d bytes, not %d", path, ed25519.SeedSize, len(seed))
	}
	return New(ed25519.NewKeyFromSeed(seed)), nil
}

// Name implements tee.Backend.
func (b *Backend) Name() string { return Kind }

// Insecure implements tee.Backend: always.
func (b *Backend) Insecure() bool { return true }

// PublicKey is the key a verifier checks statements with.
func (b *Backend) PublicKey() ed25519.PublicKey { return b.key.Public().(ed25519.PublicKey) }

// statement is what the simulator signs.
type statement struct {
	Kind       string    `json:"kind"`
	Insecure   bool      `json:"insecure"`
	ReportData []byte    `json:"report_data"`
	Issued     time.Time `json:"issued"`
}

// Attest implements tee.Backend: the evidence is a signed statement of the
// report data; the collateral is the signature and the public key.
func (b *Backend) Attest(ctx context.Context, reportData [64]byte) (tee.Evidence, error) {
	raw, err := json.Marshal(statement{Kind: statementKind, Insecure: true, ReportData: reportData[:], Issued: b.now().UTC()})
	if err != nil {
		return tee.Evidence{}, err
	}
	return tee.Evidence{Raw: raw, Collateral: [][]byte{ed25519.Sign(b.key, raw), b.PublicKey()}}, nil
}

// SealingKey implements tee.Backend: HKDF-SHA256 of the simulator's key
// and the measurement.
func (b *Backend) SealingKey(ctx context.Context, measurement [48]byte) ([]byte, error) {
	return b.DeriveKey(ctx, measurement, "sealing")
}

// DeriveKey implements tee.KeyDeriver: HKDF-SHA256 of the simulator's
// key, with the measurement as salt and "ampoule/sim/LABEL/v1" as info.
func (b *Backend) DeriveKey(ctx context.Context, measurement [48]byte, label string) ([]byte, error) {
	return hkdf.Key(sha256.New, b.key.Seed(), measurement[:], "ampoule/sim/"+label+"/v1", 32)
}

// Claims are what a verified statement says.
type Claims struct {
	ReportData [64]byte
	Issued     time.Time
	PublicKey  ed25519.PublicKey
}

// ErrStatement wraps every reason a statement does not verify.
var ErrStatement = errors.New("simulator evidence does not verify")

// Verify checks a simulator statement's signature against the public key
// in its collateral and returns what it says. Whether that key is trusted is
// the policy's business.
func Verify(e tee.Evidence) (Claims, error) {
	if len(e.Collateral) != 2 || len(e.Collateral[0]) != ed25519.SignatureSize || len(e.Collateral[1]) != ed25519.PublicKeySize {
		return Claims{}, fmt.Errorf("%w: the collateral is not a signature and a public key", ErrStatement)
	}
	pub := ed25519.PublicKey(e.Collateral[1])
	if !ed25519.Verify(pub, e.Raw, e.Collateral[0]) {
		return Claims{}, fmt.Errorf("%w: bad signature", ErrStatement)
	}
	dec := json.NewDecoder(bytes.NewReader(e.Raw))
	dec.DisallowUnknownFields()
	var s statement
	if err := dec.Decode(&s); err != nil || s.Kind != statementKind || !s.Insecure || len(s.ReportData) != 64 {
		return Claims{}, fmt.Errorf("%w: malformed statement", ErrStatement)
	}
	c := Claims{Issued: s.Issued, PublicKey: pub}
	copy(c.ReportData[:], s.ReportData)
	return c, nil
}
