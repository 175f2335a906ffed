package kbs

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKeyWrapRFC3394: the six vectors of RFC 3394 §4, wrapped and
// unwrapped; an altered wrapped key or another kek does not unwrap.
func TestKeyWrapRFC3394(t *testing.T) {
	const kek128, kek192, kek256 = "000102030405060708090A0B0C0D0E0F", "000102030405060708090A0B0C0D0E0F1011121314151617", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
	const key128, key192, key256 = "00112233445566778899AABBCCDDEEFF", "00112233445566778899AABBCCDDEEFF0001020304050607", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F"
	for _, v := range []struct{ name, kek, key, wrapped string }{
		{"4.1", kek128, key128, "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
		{"4.2", kek192, key128, "96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D"},
		{"4.3", kek256, key128, "64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7"},
		{"4.4", kek192, key192, "031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2"},
		{"4.5", kek256, key192, "A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1"},
		{"4.6", kek256, key256, "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21"},
	} {
		kek, key, want := unhex(t, v.kek), unhex(t, v.key), unhex(t, v.wrapped)
		got, err := WrapKey(kek, key)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: wrap %x %v, want %x", v.name, got, err, want)
		}
		back, err := UnwrapKey(kek, want)
		if err != nil || !bytes.Equal(back, key) {
			t.Errorf("%s: unwrap %x %v", v.name, back, err)
		}
		for i := range want {
			bad := bytes.Clone(want)
			bad[i] ^= 1
			if _, err := UnwrapKey(kek, bad); !errors.Is(err, ErrKeyWrap) {
				t.Fatalf("%s: a flip at %d unwrapped", v.name, i)
			}
		}
		other := bytes.Clone(kek)
		other[0] ^= 1
		if _, err := UnwrapKey(other, want); !errors.Is(err, ErrKeyWrap) {
			t.Errorf("%s: unwrapped under another kek", v.name)
		}
	}
	for _, n := range []int{0, 8, 17} {
		if _, err := WrapKey(make([]byte, 32), make([]byte, n)); err == nil {
			t.Errorf("wrapped %d bytes", n)
		}
	}
	if _, err := UnwrapKey(make([]byte, 32), make([]byte, 16)); err == nil {
		t.Error("unwrapped 16 bytes")
	}
}

// TestConcatKDFRFC7518: RFC 7518 Appendix C's ECDH-ES key agreement:
// Alice's ephemeral key and Bob's, "Alice" and "Bob" as PartyUInfo and
// PartyVInfo, A128GCM, give the key VqqN6vgjbSBcIijNcacQGg.
func TestConcatKDFRFC7518(t *testing.T) {
	d := func(s string) []byte {
		b, err := b64.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	alice, err := ecdh.P256().NewPrivateKey(d("0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo"))
	if err != nil {
		t.Fatal(err)
	}
	if want := append(append([]byte{4}, d("gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0")...), d("SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps")...); !bytes.Equal(alice.PublicKey().Bytes(), want) {
		t.Fatal("Alice's key is not the RFC's")
	}
	bob := JWK{Kty: "EC", Crv: CurveP256, Alg: AlgECDHESA256KW, X: "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ", Y: "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"}
	bobPub, err := bob.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	z, err := alice.ECDH(bobPub)
	if err != nil {
		t.Fatal(err)
	}
	// The RFC's Z.
	if want := []byte{158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156, 251, 49, 110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196}; !bytes.Equal(z, want) {
		t.Fatalf("Z %v", z)
	}
	if got := b64.EncodeToString(ConcatKDF(z, "A128GCM", []byte("Alice"), []byte("Bob"), 16)); got != "VqqN6vgjbSBcIijNcacQGg" {
		t.Errorf("derived %s", got)
	}
}

// TestJWERoundTrip: a resource sealed to a tee-pubkey opens with its
// private key only, with the header as Trustee writes it; every altered
// member, another key and another algorithm are refused.
func TestJWERoundTrip(t *testing.T) {
	for _, curve := range []ecdh.Curve{ecdh.P256(), ecdh.P521()} {
		priv, _ := curve.GenerateKey(rand.Reader)
		k, err := JWKFromECDH(priv.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		secret := []byte("the tenant's api key")
		j, err := Encrypt(&k, secret)
		if err != nil {
			t.Fatal(err)
		}
		hdr, _ := b64.DecodeString(j.Protected)
		if !strings.HasPrefix(string(hdr), `{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"`+k.Crv+`","kty":"EC","x":"`) {
			t.Errorf("header %s", hdr)
		}
		data, _ := json.Marshal(j)
		back, err := DecodeJWE(data)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := Decrypt(priv, back); err != nil || !bytes.Equal(pt, secret) {
			t.Fatalf("%v: %q %v", curve, pt, err)
		}
		other, _ := curve.GenerateKey(rand.Reader)
		if _, err := Decrypt(other, back); !errors.Is(err, ErrJWE) {
			t.Errorf("opened with another key")
		}
		for _, field := range []*string{&back.Protected, &back.EncryptedKey, &back.IV, &back.Ciphertext, &back.Tag} {
			saved := *field
			raw, _ := b64.DecodeString(saved)
			raw[len(raw)/2] ^= 1
			*field = b64.EncodeToString(raw)
			if _, err := Decrypt(priv, back); !errors.Is(err, ErrJWE) {
				t.Errorf("opened with a member altered: %v", err)
			}
			*field = saved
		}
		back.AAD = b64.EncodeToString([]byte("more"))
		if _, err := Decrypt(priv, back); !errors.Is(err, ErrJWE) {
			t.Error("opened with aad added")
		}
	}
	// An RSA key gets RSA-OAEP-256 (a kbs-client's default kind of key),
	// which opens with its private key.
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rj := JWK{Kty: "RSA", Alg: AlgRSAOAEP256, N: b64.EncodeToString(rk.N.Bytes()), E: b64.EncodeToString(big.NewInt(int64(rk.E)).Bytes())}
	j, err := Encrypt(&rj, []byte("to rsa"))
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := b64.DecodeString(j.EncryptedKey)
	cek, err := rsa.DecryptOAEP(sha256.New(), nil, rk, ek, nil)
	if err != nil {
		t.Fatal(err)
	}
	gcm, _ := newGCM(cek)
	iv, _ := b64.DecodeString(j.IV)
	ct, _ := b64.DecodeString(j.Ciphertext)
	tag, _ := b64.DecodeString(j.Tag)
	if pt, err := gcm.Open(nil, iv, append(ct, tag...), []byte(j.Protected)); err != nil || string(pt) != "to rsa" {
		t.Errorf("RSA-OAEP-256: %q %v", pt, err)
	}
	if hdr, _ := b64.DecodeString(j.Protected); string(hdr) != `{"alg":"RSA-OAEP-256","enc":"A256GCM"}` {
		t.Errorf("RSA header %s", hdr)
	}
	if _, err := Encrypt(&JWK{Kty: "EC", Crv: CurveP256, Alg: "ECDH-ES"}, nil); !errors.Is(err, ErrJWK) {
		t.Errorf("encrypted to ECDH-ES direct: %v", err)
	}
	if _, err := Encrypt(&JWK{Kty: "RSA", Alg: "RSA1_5", N: "AQAB", E: "AQAB"}, nil); !errors.Is(err, ErrJWK) {
		t.Errorf("encrypted with RSA1_5: %v", err)
	}
}

// TestJWKRefusals: a key off its curve, of the wrong size or type is
// refused.
func TestJWKRefusals(t *testing.T) {
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	good, _ := JWKFromECDH(priv.PublicKey())
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for name, k := range map[string]JWK{
		"off the curve": {Kty: "EC", Crv: CurveP256, Alg: AlgECDHESA256KW, X: good.X, Y: good.X},
		"short":         {Kty: "EC", Crv: CurveP256, Alg: AlgECDHESA256KW, X: good.X[:10], Y: good.Y},
		"P-384":         {Kty: "EC", Crv: "P-384", Alg: AlgECDHESA256KW, X: good.X, Y: good.Y},
		"no alg":        {Kty: "EC", Crv: CurveP256, X: good.X, Y: good.Y},
		"oct":           {Kty: "oct", Alg: AlgECDHESA256KW},
		"small RSA":     {Kty: "RSA", Alg: AlgRSAOAEP256, N: b64.EncodeToString(make([]byte, 128)), E: "AQAB"},
	} {
		if err := k.Check(); !errors.Is(err, ErrJWK) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
