// Package broker is the tenant's key broker: a relying party that verifies
// a run's evidence against the tenant's policy and releases secrets to the
// measured workload only, wrapped with HPKE to the runtime key the evidence
// binds, so that only the TEE that made the evidence can unwrap them.
//
// The protocol is two JSON requests over HTTP:
//
//	POST /v1/challenge                     -> {nonce, expires}
//	POST /v1/release {evidence, secrets}   -> {status, reasons, measurement, secrets, signature}
//
// The nonce is short-lived and answers one decision; it carries the
// broker's MAC and its expiry, so a challenge stores nothing. The evidence
// must bind it. Every
// released secret is HPKE-sealed (DHKEM(P-256), HKDF-SHA256, AES-256-GCM)
// to the envelope's runtime key with the secret's name and the nonce in
// the info, and the whole answer is signed with the broker's Ed25519 key,
// which the manifest pins: the transport needs no trust, a host in the
// middle can neither read a secret nor hand the run one of its own.
package broker

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ampoule-run/ampoule/internal/resource"
	"github.com/ampoule-run/ampoule/internal/strictjson"
)

// Paths of the protocol.
const (
	ChallengePath = "/v1/challenge"
	ReleasePath   = "/v1/release"
)

// SealingKey is the resource a run's sealed mount is sealed with: 32 bytes
// the broker derives for the run's measurement and evidence class, the
// same on every machine, at the resource path ampoule/sealing/key (a
// broker also answers to its former name, "sealing-key").
const SealingKey = resource.SealingKey

// MaxBody bounds a request or an answer.
const MaxBody = 2 << 20

// signDomain separates the broker's signatures from any other.
const signDomain = "ampoule/broker/release/v1\x00"

// Challenge is the broker's answer to a challenge request.
type Challenge struct {
	Nonce   []byte    `json:"nonce"`
	Expires time.Time `json:"expires"`
}

// ReleaseRequest asks for secrets with evidence that binds a challenge's
// nonce.
type ReleaseRequest struct {
	Evidence json.RawMessage `json:"evidence"`
	Secrets  []string        `json:"secrets"`
	// Bundle, if set, names the bundle for the audit trail, bound to the
	// evidence's measurement when it carries its proof.
	Bundle *Bundle `json:"bundle,omitempty"`
}

// ReleaseResponse is the verdict on the evidence and, when affirming, the
// secrets, each sealed to the runtime key.
type ReleaseResponse struct {
	Status      string            `json:"status"`
	Reasons     []string          `json:"reasons"`
	Measurement string            `json:"measurement"`
	Secrets     map[string][]byte `json:"secrets,omitempty"`
	// Refused names the resources asked for that the evidence, though
	// affirmed, does not get (the reasons say why); then none is released.
	Refused []string `json:"refused,omitempty"`
	// Signature is Ed25519 over signedBytes.
	Signature []byte `json:"signature"`
}

// signedBytes is what the broker signs: the domain, the request's nonce,
// and the answer without its signature, as JSON (encoding/json sorts map
// keys, so the bytes are canonical).
func signedBytes(nonce []byte, r *ReleaseResponse) []byte {
	c := *r
	c.Signature = nil
	body, _ := json.Marshal(&c)
	var b bytes.Buffer
	b.WriteString(signDomain)
	b.WriteByte(byte(len(nonce)))
	b.Write(nonce)
	b.Write(body)
	return b.Bytes()
}

// wrapInfo is the HPKE info of a released secret: it binds the name and
// the nonce, so a wrapped secret cannot be passed off as another or
// replayed into another run.
func wrapInfo(name string, nonce []byte) []byte {
	return append([]byte("ampoule/broker/secret/v1\x00"+name+"\x00"), nonce...)
}

// ErrProtocol wraps every reason a request or an answer cannot be read.
var ErrProtocol = errors.New("not a valid broker message")

// decodeStrict reads one JSON document of at most MaxBody bytes into v:
// unknown fields and trailing data are errors.
func decodeStrict(r io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if len(data) > MaxBody {
		return fmt.Errorf("%w: more than %d bytes", ErrProtocol, MaxBody)
	}
	if err := strictjson.Decode(data, v); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return nil
}

// DecodeReleaseRequest reads a release request strictly.
func DecodeReleaseRequest(r io.Reader) (*ReleaseRequest, error) {
	var req ReleaseRequest
	if err := decodeStrict(r, &req); err != nil {
		return nil, err
	}
	if len(req.Evidence) == 0 {
		return nil, fmt.Errorf("%w: no evidence", ErrProtocol)
	}
	if len(req.Secrets) == 0 || len(req.Secrets) > 64 {
		return nil, fmt.Errorf("%w: ask for 1 to 64 secrets, not %d", ErrProtocol, len(req.Secrets))
	}
	for _, name := range req.Secrets {
		if len(name) == 0 || len(name) > resource.MaxPath {
			return nil, fmt.Errorf("%w: a secret's name is 1 to %d bytes (a resource path)", ErrProtocol, resource.MaxPath)
		}
	}
	return &req, nil
}

// DecodeReleaseResponse reads a broker's answer strictly and checks its
// signature by key over the request's nonce.
func DecodeReleaseResponse(r io.Reader, key ed25519.PublicKey, nonce []byte) (*ReleaseResponse, error) {
	var resp ReleaseResponse
	if err := decodeStrict(r, &resp); err != nil {
		return nil, err
	}
	if len(key) != ed25519.PublicKeySize || !ed25519.Verify(key, signedBytes(nonce, &resp), resp.Signature) {
		return nil, fmt.Errorf("%w: the answer is not signed by the broker the manifest pins", ErrProtocol)
	}
	return &resp, nil
}
