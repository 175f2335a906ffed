package kbs

import (
	"crypto/ecdh"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// Algorithms and curves of the keys a TEE hands the broker (Trustee's
// kbs/src/jwe/mod.rs names the same).
const (
	AlgECDHESA256KW = "ECDH-ES+A256KW"
	AlgRSAOAEP256   = "RSA-OAEP-256"
	EncA256GCM      = "A256GCM"
	CurveP256       = "P-256"
	CurveP521       = "P-521"
)

// JWK is a JSON Web Key (RFC 7517) as the KBS protocol's tee-pubkey
// carries it: EC (crv, x, y) or RSA (n, e), each with the algorithm the
// broker encrypts to it with. Kid and Use are a published key's (JWKS),
// never part of a tee-pubkey.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	Alg string `json:"alg,omitempty"`
	X   string `json:"x,omitempty"`
	Y   string `json:"y,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Kid string `json:"kid,omitempty"`
	Use string `json:"use,omitempty"`
}

// ErrJWK wraps every reason a key cannot be read or used.
var ErrJWK = errors.New("not a usable JSON web key")

var b64 = base64.RawURLEncoding

// curveOf is the ecdh curve of a JWK crv and its coordinate size.
func curveOf(crv string) (ecdh.Curve, int, error) {
	switch crv {
	case CurveP256:
		return ecdh.P256(), 32, nil
	case CurveP521:
		return ecdh.P521(), 66, nil
	}
	return nil, 0, fmt.Errorf("%w: the curve %q (P-256 or P-521)", ErrJWK, crv)
}

// JWKFromECDH is the tee-pubkey of an ECDH public key on P-256 or P-521,
// for ECDH-ES+A256KW.
func JWKFromECDH(pub *ecdh.PublicKey) (JWK, error) {
	var crv string
	switch pub.Curve() {
	case ecdh.P256():
		crv = CurveP256
	case ecdh.P521():
		crv = CurveP521
	default:
		return JWK{}, fmt.Errorf("%w: only P-256 and P-521 keys", ErrJWK)
	}
	b := pub.Bytes() // 0x04 ‖ x ‖ y
	n := (len(b) - 1) / 2
	return JWK{Kty: "EC", Crv: crv, Alg: AlgECDHESA256KW, X: b64.EncodeToString(b[1 : 1+n]), Y: b64.EncodeToString(b[1+n:])}, nil
}

// ECDH is the key as an ECDH public key: an EC key on P-256 or P-521
// whose point is on its curve.
func (k *JWK) ECDH() (*ecdh.PublicKey, error) {
	if k.Kty != "EC" {
		return nil, fmt.Errorf("%w: kty %q, not EC", ErrJWK, k.Kty)
	}
	curve, size, err := curveOf(k.Crv)
	if err != nil {
		return nil, err
	}
	x, errX := b64.DecodeString(k.X)
	y, errY := b64.DecodeString(k.Y)
	if errX != nil || errY != nil || len(x) != size || len(y) != size {
		return nil, fmt.Errorf("%w: the coordinates are not %d bytes of base64url each", ErrJWK, size)
	}
	pub, err := curve.NewPublicKey(append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, fmt.Errorf("%w: the point is not on %s", ErrJWK, k.Crv)
	}
	return pub, nil
}

// RSA is the key as an RSA public key of 2048 to 8192 bits.
func (k *JWK) RSA() (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("%w: kty %q, not RSA", ErrJWK, k.Kty)
	}
	n, errN := b64.DecodeString(k.N)
	e, errE := b64.DecodeString(k.E)
	if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("%w: n and e are not base64url", ErrJWK)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	if bits := pub.N.BitLen(); bits < 2048 || bits > 8192 || pub.E < 3 || pub.E%2 == 0 {
		return nil, fmt.Errorf("%w: an RSA key of %d bits with exponent %d (2048 to 8192 bits, an odd exponent)", ErrJWK, pub.N.BitLen(), pub.E)
	}
	return pub, nil
}

// Check says why the broker cannot encrypt to k as a tee-pubkey, or nil:
// an EC key on P-256 or P-521 for ECDH-ES+A256KW, or an RSA key for
// RSA-OAEP-256 (RSA1_5, which Trustee still accepts with a warning, is
// refused).
func (k *JWK) Check() error {
	switch {
	case k.Kty == "EC" && k.Alg == AlgECDHESA256KW:
		_, err := k.ECDH()
		return err
	case k.Kty == "RSA" && k.Alg == AlgRSAOAEP256:
		_, err := k.RSA()
		return err
	}
	return fmt.Errorf("%w: kty %q with alg %q (EC with %s, or RSA with %s)", ErrJWK, k.Kty, k.Alg, AlgECDHESA256KW, AlgRSAOAEP256)
}

// canonical is the key as Trustee's typed TeePubKey serializes it, which
// is what its runtime data hash covers: only the members of the key's
// type, keys in sorted order (kty is the tag).
func (k *JWK) canonical() map[string]string {
	if k.Kty == "RSA" {
		return map[string]string{"alg": k.Alg, "e": k.E, "kty": k.Kty, "n": k.N}
	}
	return map[string]string{"alg": k.Alg, "crv": k.Crv, "kty": k.Kty, "x": k.X, "y": k.Y}
}

// DecodeJWK reads a tee-pubkey: members beyond a key's are ignored (as
// Trustee's serde does), a missing one is an error, and Check must accept
// the key.
func DecodeJWK(data []byte) (*JWK, error) {
	if len(data) > 4096 {
		return nil, fmt.Errorf("%w: %d bytes", ErrJWK, len(data))
	}
	var k JWK
	if err := decodeLoose(data, &k); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWK, err)
	}
	if err := k.Check(); err != nil {
		return nil, err
	}
	return &k, nil
}

// JWKS is a JSON Web Key Set (RFC 7517 §5).
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// MarshalJSON keeps an empty set's keys a list.
func (s JWKS) MarshalJSON() ([]byte, error) {
	type plain JWKS
	if s.Keys == nil {
		s.Keys = []JWK{}
	}
	return json.Marshal(plain(s))
}
