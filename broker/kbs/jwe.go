package kbs

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
)

// JWE is a JSON Web Encryption object in the flattened JSON serialization
// (RFC 7516 §7.2.2), as a KBS resource response carries it: every member
// base64url without padding. The protected header is the one Trustee
// writes: {"alg","enc"} and, for ECDH-ES, the ephemeral key "epk".
type JWE struct {
	Protected    string `json:"protected"`
	EncryptedKey string `json:"encrypted_key"`
	AAD          string `json:"aad,omitempty"`
	IV           string `json:"iv"`
	Ciphertext   string `json:"ciphertext"`
	Tag          string `json:"tag"`
}

// ErrJWE wraps every reason a JWE cannot be made, read or opened.
var ErrJWE = errors.New("not a valid JWE")

// header is the protected header. Its members are in the order Trustee's
// serde writes them (alg, enc, then the others sorted: epk, and in it
// crv, kty, x, y), so that a client that re-serializes the header for the
// AAD, as Trustee's does, gets the bytes sent.
type header struct {
	Alg string     `json:"alg"`
	Enc string     `json:"enc"`
	Epk *headerEpk `json:"epk,omitempty"`
}

type headerEpk struct {
	Crv string `json:"crv"`
	Kty string `json:"kty"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// Encrypt seals plaintext to the tee-pubkey k (which Check accepts): a
// fresh 256-bit content key encrypts it with AES-256-GCM, the key wrapped
// with ECDH-ES+A256KW (an ephemeral key on k's curve, RFC 7518's Concat
// KDF with no PartyUInfo or PartyVInfo, RFC 3394 key wrap) or encrypted
// with RSA-OAEP-256.
func Encrypt(k *JWK, plaintext []byte) (*JWE, error) {
	if err := k.Check(); err != nil {
		return nil, err
	}
	cek := make([]byte, 32)
	rand.Read(cek)
	defer clear(cek)
	h := header{Alg: k.Alg, Enc: EncA256GCM}
	var encKey []byte
	switch k.Alg {
	case AlgECDHESA256KW:
		pub, _ := k.ECDH()
		eph, err := pub.Curve().GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrJWE, err)
		}
		z, err := eph.ECDH(pub)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrJWE, err)
		}
		kek := ConcatKDF(z, AlgECDHESA256KW, nil, nil, 32)
		clear(z)
		encKey, err = WrapKey(kek, cek)
		clear(kek)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrJWE, err)
		}
		epk, _ := JWKFromECDH(eph.PublicKey())
		h.Epk = &headerEpk{Crv: epk.Crv, Kty: epk.Kty, X: epk.X, Y: epk.Y}
	case AlgRSAOAEP256:
		pub, _ := k.RSA()
		var err error
		if encKey, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, cek, nil); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrJWE, err)
		}
	}
	hdr, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWE, err)
	}
	protected := b64.EncodeToString(hdr)
	gcm, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, gcm.NonceSize())
	rand.Read(iv)
	sealed := gcm.Seal(nil, iv, plaintext, []byte(protected))
	ct, tag := sealed[:len(sealed)-gcm.Overhead()], sealed[len(sealed)-gcm.Overhead():]
	return &JWE{Protected: protected, EncryptedKey: b64.EncodeToString(encKey), IV: b64.EncodeToString(iv),
		Ciphertext: b64.EncodeToString(ct), Tag: b64.EncodeToString(tag)}, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWE, err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWE, err)
	}
	return gcm, nil
}

// MaxJWE bounds an encoded resource response.
const MaxJWE = 1 << 20

// DecodeJWE reads a flattened JWE: members beyond RFC 7516's flattened
// ones are ignored (as Trustee's serde does), a missing one, a duplicate
// member, data after it or a member that is not base64url is an error.
func DecodeJWE(data []byte) (*JWE, error) {
	if len(data) > MaxJWE {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrJWE, len(data), MaxJWE)
	}
	var j struct {
		JWE
		Header json.RawMessage `json:"header"`
	}
	if err := decodeLoose(data, &j); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWE, err)
	}
	if j.Header != nil {
		return nil, fmt.Errorf("%w: an unprotected header", ErrJWE)
	}
	for _, m := range []struct{ name, v string }{{"protected", j.Protected}, {"encrypted_key", j.EncryptedKey}, {"iv", j.IV}, {"ciphertext", j.Ciphertext}, {"tag", j.Tag}, {"aad", j.AAD}} {
		if m.v == "" && m.name != "aad" && m.name != "ciphertext" {
			return nil, fmt.Errorf("%w: no %s", ErrJWE, m.name)
		}
		if _, err := b64.DecodeString(m.v); err != nil {
			return nil, fmt.Errorf("%w: %s is not base64url", ErrJWE, m.name)
		}
	}
	return &j.JWE, nil
}

// Decrypt opens a JWE sealed to priv's public key with ECDH-ES+A256KW and
// A256GCM on priv's curve: any other algorithm, a header naming what it
// does not say (crit, zip), an altered member or another key's JWE is
// ErrJWE.
func Decrypt(priv *ecdh.PrivateKey, j *JWE) ([]byte, error) {
	raw, err := b64.DecodeString(j.Protected)
	if err != nil {
		return nil, fmt.Errorf("%w: the protected header is not base64url", ErrJWE)
	}
	var h struct {
		header
		Crit json.RawMessage `json:"crit"`
		Zip  json.RawMessage `json:"zip"`
	}
	if err := decodeLoose(raw, &h); err != nil {
		return nil, fmt.Errorf("%w: the protected header: %v", ErrJWE, err)
	}
	if h.Alg != AlgECDHESA256KW || h.Enc != EncA256GCM || h.Epk == nil || h.Crit != nil || h.Zip != nil {
		return nil, fmt.Errorf("%w: alg %q, enc %q (want %s with an epk, %s, no crit or zip)", ErrJWE, h.Alg, h.Enc, AlgECDHESA256KW, EncA256GCM)
	}
	epk := JWK{Kty: h.Epk.Kty, Crv: h.Epk.Crv, X: h.Epk.X, Y: h.Epk.Y}
	eph, err := epk.ECDH()
	if err != nil || eph.Curve() != priv.Curve() {
		return nil, fmt.Errorf("%w: the ephemeral key is not a point on the key's curve", ErrJWE)
	}
	z, err := priv.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJWE, err)
	}
	kek := ConcatKDF(z, AlgECDHESA256KW, nil, nil, 32)
	clear(z)
	wrapped, err := b64.DecodeString(j.EncryptedKey)
	if err != nil {
		return nil, fmt.Errorf("%w: encrypted_key is not base64url", ErrJWE)
	}
	cek, err := UnwrapKey(kek, wrapped)
	clear(kek)
	if err != nil || len(cek) != 32 {
		return nil, fmt.Errorf("%w: the content key does not unwrap with this key", ErrJWE)
	}
	defer clear(cek)
	iv, errIV := b64.DecodeString(j.IV)
	ct, errCT := b64.DecodeString(j.Ciphertext)
	tag, errTag := b64.DecodeString(j.Tag)
	if errIV != nil || errCT != nil || errTag != nil || len(iv) != 12 || len(tag) != 16 {
		return nil, fmt.Errorf("%w: iv, ciphertext or tag", ErrJWE)
	}
	gcm, err := newGCM(cek)
	if err != nil {
		return nil, err
	}
	// RFC 7516 §5.2 step 14: the AAD is the protected header as sent,
	// and ".aad" when there is one.
	aad := j.Protected
	if j.AAD != "" {
		aad += "." + j.AAD
	}
	pt, err := gcm.Open(nil, iv, append(ct, tag...), []byte(aad))
	if err != nil {
		return nil, fmt.Errorf("%w: the ciphertext does not open (altered, or not for this key)", ErrJWE)
	}
	return pt, nil
}
