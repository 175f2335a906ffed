// Package kbs is the Trustee Key Broker Service protocol, as KBS protocol
// version 0.4.0 has it (Trustee's kbs/src/attestation/backend.rs and the
// kbs-types crate it pins): the wire types and their decoders, the JSON
// web keys and flattened JWE of its answers, its RFC 7807 problems, the
// EAR attestation result tokens the Ampoule broker issues, and the
// client a run fetches its resources with. docs/architecture.md ("Trustee
// KBS protocol") says where each shape comes from.
package kbs

import (
	"bytes"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// ProtocolVersion is the KBS protocol version this package speaks; a
// request for any other is refused, as Trustee refuses it.
const ProtocolVersion = "0.4.0"

// Paths of the protocol.
const (
	AuthPath     = "/kbs/v0/auth"
	AttestPath   = "/kbs/v0/attest"
	ResourcePath = "/kbs/v0/resource/"
	// JWKSPath publishes the keys EAR tokens are signed with.
	JWKSPath = "/.well-known/jwks.json"
)

// SessionCookie is the cookie a KBS session goes by.
const SessionCookie = "kbs-session-id"

// MaxBody bounds a request or an answer of the protocol.
const MaxBody = 2 << 20

// ErrMessage wraps every reason a protocol message cannot be read.
var ErrMessage = errors.New("not a valid KBS message")

// Request opens a KBS session (POST /kbs/v0/auth).
type Request struct {
	Version     string          `json:"version"`
	Tee         string          `json:"tee"`
	ExtraParams json.RawMessage `json:"extra-params"`
}

// Challenge is the broker's answer to a Request: a nonce (base64) the
// evidence must bind.
type Challenge struct {
	Nonce       string          `json:"nonce"`
	ExtraParams json.RawMessage `json:"extra-params"`
}

// Attestation answers a challenge (POST /kbs/v0/attest).
type Attestation struct {
	InitData    json.RawMessage   `json:"init-data,omitempty"`
	RuntimeData RuntimeData       `json:"runtime-data"`
	TeeEvidence CompositeEvidence `json:"tee-evidence"`
}

// RuntimeData is what the evidence binds, through RuntimeDataHash.
type RuntimeData struct {
	Nonce     string `json:"nonce"`
	TeePubKey JWK    `json:"tee-pubkey"`
}

// CompositeEvidence is the TEE's evidence: the primary TEE's, and a JSON
// string of further devices' (which Ampoule's broker does not take).
type CompositeEvidence struct {
	PrimaryEvidence    json.RawMessage `json:"primary_evidence"`
	AdditionalEvidence string          `json:"additional_evidence"`
}

// TokenResponse is the answer to an Attestation: the attestation result
// token.
type TokenResponse struct {
	Token string `json:"token"`
}

// AmpouleEvidence is the primary evidence of an Ampoule run: the run's
// evidence envelope (whose nonce is the RuntimeDataHash and whose runtime
// key is the tee-pubkey's point) and, for the audit trail, its bundle.
type AmpouleEvidence struct {
	Envelope json.RawMessage `json:"ampoule-envelope"`
	Bundle   json.RawMessage `json:"ampoule-bundle,omitempty"`
}

// TDXEvidence is Trustee's TDX evidence (deps/verifier/src/tdx): the
// quote and the event logs, base64.
type TDXEvidence struct {
	CCEventlog *string `json:"cc_eventlog"`
	Quote      string  `json:"quote"`
	AAEventlog *string `json:"aa_eventlog"`
}

// SNPEvidence is Trustee's SEV-SNP evidence (deps/verifier/src/snp): the
// report as the sev crate serializes it, and the certificates.
type SNPEvidence struct {
	AttestationReport json.RawMessage `json:"attestation_report"`
	CertChain         []CertEntry     `json:"cert_chain"`
}

// CertEntry is one certificate of an SNPEvidence, its DER as a list of
// bytes.
type CertEntry struct {
	CertType string `json:"cert_type"`
	Data     []int  `json:"data"`
}

// decodeLoose reads exactly one JSON document into v as Trustee's serde
// does: unknown members are ignored, but a duplicate member anywhere
// (which serde refuses for a typed field, and which two parsers could
// read differently) or anything after the document is an error.
func decodeLoose(data []byte, v any) error {
	if err := noDuplicates(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("data after the document")
	}
	return nil
}

// noDuplicates refuses a JSON document with an object holding a member
// twice (members compared as decoded), or a value nested deeper than 64.
// Valid JSON is scanned byte by byte (the token walk was an eighth of a
// KBS cycle's CPU); anything else gets the token walk's answer.
func noDuplicates(data []byte) error {
	if !json.Valid(data) {
		return noDuplicatesWalk(data)
	}
	// An object's members are kept in a slice while few, in a map
	// beyond, so that a body of many members costs no quadratic time.
	type container struct {
		object bool
		keys   []string
		many   map[string]bool
	}
	var stack []container
	expectKey := false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case ' ', '\t', '\n', '\r', ':':
		case ',':
			expectKey = stack[len(stack)-1].object
		case '{', '[':
			if len(stack) > 64 {
				return errors.New("nested deeper than 64")
			}
			stack = append(stack, container{object: c == '{'})
			expectKey = c == '{'
		case '}', ']':
			stack = stack[:len(stack)-1]
			expectKey = false
		case '"':
			j, escaped := i+1, false
			for data[j] != '"' {
				if data[j] == '\\' {
					escaped = true
					j++
				}
				j++
			}
			if expectKey {
				key := string(data[i+1 : j])
				if escaped {
					if err := json.Unmarshal(data[i:j+1], &key); err != nil {
						return err
					}
				}
				top := &stack[len(stack)-1]
				if slices.Contains(top.keys, key) || top.many[key] {
					return fmt.Errorf("the member %q twice", key)
				}
				if top.many == nil && len(top.keys) < 16 {
					top.keys = append(top.keys, key)
				} else {
					if top.many == nil {
						top.many = map[string]bool{}
					}
					top.many[key] = true
				}
				expectKey = false
			} else if len(stack) > 64 {
				return errors.New("nested deeper than 64")
			}
			i = j
		default:
			// A number, true, false or null.
			if len(stack) > 64 {
				return errors.New("nested deeper than 64")
			}
			for i+1 < len(data) && !strings.ContainsRune(" \t\n\r,]}", rune(data[i+1])) {
				i++
			}
		}
	}
	return nil
}

// noDuplicatesWalk is noDuplicates by the standard decoder's tokens: its
// errors for a document that is not JSON, and the reference the scanner
// is fuzzed against.
func noDuplicatesWalk(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 64 {
			return errors.New("nested deeper than 64")
		}
		t, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := t.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				key, _ := k.(string)
				if seen[key] {
					return fmt.Errorf("the member %q twice", key)
				}
				seen[key] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	return walk(0)
}

func readBody(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	if len(data) > MaxBody {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrMessage, MaxBody)
	}
	return data, nil
}

// DecodeRequest reads a Request: version, tee and extra-params are
// required (extra-params may be any JSON value; Trustee's clients send "").
func DecodeRequest(r io.Reader) (*Request, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var req Request
	if err := decodeLoose(data, &req); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	if req.Version == "" || req.Tee == "" || len(req.ExtraParams) == 0 {
		return nil, fmt.Errorf("%w: a request needs version, tee and extra-params", ErrMessage)
	}
	if len(req.Version) > 32 || len(req.Tee) > 32 {
		return nil, fmt.Errorf("%w: a version or tee longer than 32 bytes", ErrMessage)
	}
	return &req, nil
}

// DecodeChallenge reads a Challenge: a nonce is required.
func DecodeChallenge(r io.Reader) (*Challenge, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var c Challenge
	if err := decodeLoose(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	if c.Nonce == "" || len(c.Nonce) > 512 {
		return nil, fmt.Errorf("%w: a challenge needs a nonce of at most 512 bytes", ErrMessage)
	}
	return &c, nil
}

// DecodeAttestation reads an Attestation: runtime-data with its nonce and
// a tee-pubkey the broker can encrypt to, and tee-evidence with primary
// evidence, are required.
func DecodeAttestation(r io.Reader) (*Attestation, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var a Attestation
	if err := decodeLoose(data, &a); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	if a.RuntimeData.Nonce == "" || len(a.RuntimeData.Nonce) > 512 {
		return nil, fmt.Errorf("%w: runtime-data needs a nonce of at most 512 bytes", ErrMessage)
	}
	if err := a.RuntimeData.TeePubKey.Check(); err != nil {
		return nil, fmt.Errorf("%w: tee-pubkey: %v", ErrMessage, err)
	}
	if len(a.TeeEvidence.PrimaryEvidence) == 0 || string(a.TeeEvidence.PrimaryEvidence) == "null" {
		return nil, fmt.Errorf("%w: tee-evidence needs primary_evidence", ErrMessage)
	}
	if !utf8.ValidString(a.TeeEvidence.AdditionalEvidence) {
		return nil, fmt.Errorf("%w: additional_evidence is not UTF-8", ErrMessage)
	}
	return &a, nil
}

// DecodeTokenResponse reads the answer to an Attestation.
func DecodeTokenResponse(r io.Reader) (*TokenResponse, error) {
	data, err := readBody(r)
	if err != nil {
		return nil, err
	}
	var t TokenResponse
	if err := decodeLoose(data, &t); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	if t.Token == "" {
		return nil, fmt.Errorf("%w: no token", ErrMessage)
	}
	return &t, nil
}

// RuntimeDataHash is the report data KBS protocol 0.4.0 has the primary
// evidence bind (Trustee's backend.rs and attestation-service's
// parse_runtime_data): SHA-384 over the JSON object
//
//	{"additional-evidence":A,"nonce":N,"tee-pubkey":K}
//
// with its members (and the key's) in sorted order, no whitespace, and
// strings escaped as serde_json (and RFC 8785) escape them; K has exactly
// the members of the key's type. SEV-SNP and TDX zero-pad the 48 bytes to
// their 64 of report data.
func RuntimeDataHash(nonce string, key *JWK, additional string) [48]byte {
	var b strings.Builder
	b.WriteString(`{"additional-evidence":`)
	writeString(&b, additional)
	b.WriteString(`,"nonce":`)
	writeString(&b, nonce)
	b.WriteString(`,"tee-pubkey":{`)
	c := key.canonical()
	names := []string{"alg", "crv", "kty", "x", "y"}
	if key.Kty == "RSA" {
		names = []string{"alg", "e", "kty", "n"}
	}
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(&b, n)
		b.WriteByte(':')
		writeString(&b, c[n])
	}
	b.WriteString("}}")
	return sha512.Sum384([]byte(b.String()))
}

// writeString writes s as a JSON string as serde_json does: ", \ and the
// control characters escaped (\b \f \n \r \t, the others as \u00xx), all
// else as it is.
func writeString(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if c < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			} else {
				b.WriteByte(c)
			}
		}
	}
	b.WriteByte('"')
}
