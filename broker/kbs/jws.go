package kbs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

// signES256 is payload signed under key as a compact JWS (RFC 7515 §7.1):
// BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature), the
// protected header {"alg":"ES256","kid":kid,"typ":"JWT"} and the signature
// ECDSA P-256 with SHA-256 over the first two parts, as R ‖ S, each 32
// bytes big-endian (RFC 7518 §3.4). It is the one shape the broker's
// tokens take, written here because jwx's general signer (headers as a
// reflective map, the message built and marshalled again) was half of a
// token's cost; tokens the broker receives are still verified by jwx.
func signES256(key *ecdsa.PrivateKey, kid string, payload []byte) (string, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return "", fmt.Errorf("%w: an ES256 key is on P-256", ErrToken)
	}
	hdr, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{"ES256", kid, "JWT"})
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToken, err)
	}
	n := b64.EncodedLen(len(hdr)) + 1 + b64.EncodedLen(len(payload))
	out := make([]byte, n, n+1+b64.EncodedLen(64))
	b64.Encode(out, hdr)
	out[b64.EncodedLen(len(hdr))] = '.'
	b64.Encode(out[b64.EncodedLen(len(hdr))+1:], payload)
	digest := sha256.Sum256(out)
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToken, err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	out = append(out, '.')
	out = b64.AppendEncode(out, sig[:])
	return string(out), nil
}
