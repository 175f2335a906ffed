package kbs

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"
)

// The fuzz targets: no input makes a decoder panic or hang, and what
// decodes satisfies the decoder's own checks.

func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"version":"0.4.0","tee":"snp","extra-params":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := DecodeRequest(bytes.NewReader(data)); err == nil && (r.Version == "" || r.Tee == "") {
			t.Fatalf("decoded %+v", r)
		}
	})
}

func FuzzDecodeChallenge(f *testing.F) {
	f.Add([]byte(`{"nonce":"42","extra-params":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := DecodeChallenge(bytes.NewReader(data)); err == nil && c.Nonce == "" {
			t.Fatalf("decoded %+v", c)
		}
	})
}

func FuzzDecodeAttestation(f *testing.F) {
	f.Add([]byte(`{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ","y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"}},"tee-evidence":{"primary_evidence":{"quote":"AA=="},"additional_evidence":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAttestation(bytes.NewReader(data))
		if err != nil {
			return
		}
		if err := a.RuntimeData.TeePubKey.Check(); err != nil {
			t.Fatalf("decoded a key it cannot use: %v", err)
		}
		RuntimeDataHash(a.RuntimeData.Nonce, &a.RuntimeData.TeePubKey, a.TeeEvidence.AdditionalEvidence)
	})
}

func FuzzDecodeJWK(f *testing.F) {
	f.Add([]byte(`{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ","y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := DecodeJWK(data); err == nil {
			if _, err := Encrypt(k, []byte("x")); err != nil {
				t.Fatalf("decoded a key Encrypt refuses: %v", err)
			}
		}
	})
}

// FuzzDecrypt: a JWE of any shape, opened with a fixed key, is refused
// or opens; never a panic.
func FuzzDecrypt(f *testing.F) {
	priv, _ := ecdh.P256().NewPrivateKey(bytes.Repeat([]byte{3}, 32))
	k, _ := JWKFromECDH(priv.PublicKey())
	j, _ := Encrypt(&k, []byte("seed"))
	f.Add(j.Protected, j.EncryptedKey, j.IV, j.Ciphertext, j.Tag)
	f.Fuzz(func(t *testing.T, protected, key, iv, ct, tag string) {
		data := []byte(`{"protected":"` + protected + `","encrypted_key":"` + key + `","iv":"` + iv + `","ciphertext":"` + ct + `","tag":"` + tag + `"}`)
		if j, err := DecodeJWE(data); err == nil {
			Decrypt(priv, j)
		}
	})
}

// FuzzVerifyEAR: no string is a token under a key that did not sign it.
func FuzzVerifyEAR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := ECDSAJWK(&key.PublicKey)
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := VerifyEAR(tok, JWKS{Keys: []JWK{pub}}, time.Now()); err == nil {
			t.Fatalf("a token never signed verified: %q", tok)
		}
	})
}

func FuzzDecodeProblem(f *testing.F) {
	f.Add([]byte(`{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"Access denied by policy"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, err := DecodeProblem(bytes.NewReader(data), 401); err == nil && p.Type == "" {
			t.Fatalf("decoded %+v", p)
		}
	})
}

// FuzzNoDuplicates: the byte scanner refusing members given twice and
// deep nesting decides as the standard decoder's token walk does, for
// every document.
func FuzzNoDuplicates(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[1,2,{"a":2}]}`, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a\"b":1,"a\\b":2}`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
		`{"k":"v", "n": -1.5e3, "t": true, "f": false, "z": null}`, `"top"`, `{} x`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, walk := noDuplicates(data), noDuplicatesWalk(data)
		if (fast == nil) != (walk == nil) {
			t.Fatalf("scanner %v, token walk %v, for %q", fast, walk, data)
		}
	})
}
