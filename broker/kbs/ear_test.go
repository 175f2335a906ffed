package kbs

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/veraison/ear"
)

func testClaims(t *testing.T, now time.Time) Claims {
	t.Helper()
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	k, _ := JWKFromECDH(priv.PublicKey())
	return Claims{Verdict: "affirming", Measurement: strings.Repeat("ab", 48), Profile: "staging", Backend: "sim", Class: "insecure",
		Reasons: []string{"a reason"}, Bundle: &BundleClaim{Name: "notebook", Version: "1.0", Bound: true},
		Nonce: "bm9uY2Ugb2YgdGhlIGNoYWxsZW5nZQ", TeePubKey: k, IssuedAt: now, Expires: now.Add(EARLifetime), Issuer: "http://broker"}
}

// TestEAR: a token the broker signs verifies against its JWKS with every
// claim back, and reads as an EAR with ear's own verification; expired,
// not yet issued, signed by another key, altered, with alg none or
// another kid, it is refused.
func TestEAR(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, err := ECDSAJWK(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keys := JWKS{Keys: []JWK{pub}}
	c := testClaims(t, now)
	tok, err := IssueEAR(key, pub.Kid, c, "ampoule test")
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyEAR(tok, keys, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Verdict != "affirming" || got.Measurement != c.Measurement || got.Profile != "staging" || got.Backend != "sim" || got.Class != "insecure" ||
		got.Reasons[0] != "a reason" || *got.Bundle != *c.Bundle || got.TeePubKey != c.TeePubKey || got.Nonce != c.Nonce ||
		!got.Expires.Equal(c.Expires) || !got.IssuedAt.Equal(now) || got.Issuer != "http://broker" {
		t.Errorf("claims %+v", got)
	}
	// Its report shows the token's own fields beside the claims.
	rep, err := json.Marshal(got.Report())
	var shown map[string]any
	if err != nil || json.Unmarshal(rep, &shown) != nil || shown["verdict"] != "affirming" || shown["issuer"] != "http://broker" ||
		shown["issued_at"] != now.Format(time.RFC3339) || shown["expires"] == nil || shown["tee_pubkey"] == nil {
		t.Errorf("report %s, %v", rep, err)
	}
	// ear reads it as an EAR (its own signature check).
	var ar ear.AttestationResult
	if err := ar.Verify([]byte(tok), jwa.ES256(), &key.PublicKey); err != nil {
		t.Errorf("ear's Verify: %v", err)
	} else if s := ar.Submods[EARSubmod].Status.String(); s != "affirming" || *ar.Profile != ear.EatTrusteeProfile {
		t.Errorf("ear status %s", s)
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged, _ := IssueEAR(other, pub.Kid, c, "ampoule test")
	parts := strings.Split(tok, ".")
	payload, _ := b64.DecodeString(parts[1])
	altered := parts[0] + "." + b64.EncodeToString([]byte(strings.Replace(string(payload), "staging", "production", 1))) + "." + parts[2]
	none := b64.EncodeToString([]byte(`{"alg":"none","kid":"`+pub.Kid+`"}`)) + "." + parts[1] + "."
	otherKid, _ := IssueEAR(key, "another", c, "ampoule test")
	// The broker's own claims, signed by its key, but for exp or nbf.
	resigned := func(change func(map[string]any)) string {
		var m map[string]any
		json.Unmarshal(payload, &m)
		change(m)
		return signRaw(t, key, pub.Kid, m)
	}
	if _, err := VerifyEAR(resigned(func(map[string]any) {}), keys, now); err != nil {
		t.Fatalf("the token's claims signed again: %v", err)
	}
	for name, tc := range map[string]struct {
		tok string
		now time.Time
	}{
		"expired":            {tok, now.Add(EARLifetime + time.Second)},
		"not yet issued":     {tok, now.Add(-time.Hour)},
		"another key":        {forged, now},
		"altered":            {altered, now},
		"alg none":           {none, now},
		"another kid":        {otherKid, now},
		"not a token":        {"a.b", now},
		"three bad parts":    {"!.!.!", now},
		"claims not ampoule": {signRaw(t, key, pub.Kid, map[string]any{"exp": now.Add(time.Hour).Unix()}), now},
		"no exp":             {resigned(func(m map[string]any) { delete(m, "exp") }), now},
		"no iat":             {resigned(func(m map[string]any) { delete(m, "iat") }), now},
		"not before later":   {resigned(func(m map[string]any) { m["nbf"] = now.Add(time.Minute).Unix() }), now},
		"exp not a number":   {resigned(func(m map[string]any) { m["exp"] = "tomorrow" }), now},
	} {
		if _, err := VerifyEAR(tc.tok, keys, tc.now); !errors.Is(err, ErrToken) && !errors.Is(err, ErrJWK) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A verdict and a status that disagree.
	c.Verdict = "none"
	if _, err := IssueEAR(key, pub.Kid, c, "x"); !errors.Is(err, ErrToken) {
		t.Errorf("issued a token with no verdict: %v", err)
	}
}

// signRaw signs claims as a JWT under key, whatever they are.
func signRaw(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	data, _ := json.Marshal(claims)
	return signJWS(t, key, kid, data)
}

// signJWS is a compact ES256 JWS of payload under key, made by hand.
func signJWS(t *testing.T, key *ecdsa.PrivateKey, kid string, payload []byte) string {
	t.Helper()
	input := b64.EncodeToString([]byte(`{"alg":"ES256","kid":"`+kid+`","typ":"JWT"}`)) + "." + b64.EncodeToString(payload)
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64.EncodeToString(sig)
}
