package kbs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// TestSignES256: the compact JWS the broker writes is RFC 7515's: three
// base64url parts without padding, the header exactly
// {"alg":"ES256","kid":…,"typ":"JWT"}, the payload the bytes given, and
// a 64-byte R ‖ S signature that crypto/ecdsa verifies over the first two
// parts and that jwx, an implementation of its own, accepts; a byte
// changed anywhere, or another key, and jwx refuses it. A key not on
// P-256 is refused.
func TestSignES256(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	payload := []byte(`{"iss":"ampoule-broker","n":1,"s":"\u00e9?>"}`)
	tok, err := signES256(key, "kid-1", payload)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || strings.ContainsAny(tok, "=+/") {
		t.Fatalf("not a compact JWS of base64url parts: %q", tok)
	}
	hdr, _ := b64.DecodeString(parts[0])
	if string(hdr) != `{"alg":"ES256","kid":"kid-1","typ":"JWT"}` {
		t.Errorf("header %s", hdr)
	}
	if got, _ := b64.DecodeString(parts[1]); string(got) != string(payload) {
		t.Errorf("payload %s", got)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("signature %d bytes, %v", len(sig), err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(&key.PublicKey, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Error("crypto/ecdsa does not verify R ‖ S over the signing input")
	}
	got, err := jws.Verify([]byte(tok), jws.WithKey(jwa.ES256(), &key.PublicKey))
	if err != nil || string(got) != string(payload) {
		t.Fatalf("jwx: %v (payload %s)", err, got)
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if kid, _ := h.KeyID(); kid != "kid-1" {
		t.Errorf("jwx reads kid %q", kid)
	}
	if typ, _ := h.Type(); typ != "JWT" {
		t.Errorf("jwx reads typ %q", typ)
	}
	if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.ES256(), &other.PublicKey)); err == nil {
		t.Error("jwx accepts it under another key")
	}
	for i := range len(tok) {
		if tok[i] == '.' {
			continue
		}
		b := []byte(tok)
		b[i] ^= 0x01
		if _, err := jws.Verify(b, jws.WithKey(jwa.ES256(), &key.PublicKey)); err == nil && !sameDecoded(tok, string(b)) {
			t.Fatalf("byte %d changed and jwx still accepts it", i)
		}
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := signES256(p384, "k", payload); err == nil {
		t.Error("a P-384 key signs ES256")
	}
}

// sameDecoded: the two compact serializations decode to the same bytes
// part by part (a flip in a part's last character's unused low bits
// changes nothing decoded, and a verifier may decode before it checks).
func sameDecoded(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range pa {
		da, _ := b64.DecodeString(pa[i])
		db, errB := b64.DecodeString(pb[i])
		if errB != nil || string(da) != string(db) {
			return false
		}
	}
	return true
}
