package tdx

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/testing/testdata"

	"github.com/ampoule-run/ampoule/internal/tdxfake"
)

// v5Quote is a version 5 quote from the test signer, for report data rd.
func v5Quote(t *testing.T, td15 bool) ([]byte, *x509.CertPool, [64]byte) {
	t.Helper()
	fake := tdxfake.New(t)
	fake.Version, fake.TD15 = 5, td15
	rd := [64]byte{5, 1, 5}
	ev, err := NewBackend(fake).Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Raw, fake.Roots(), rd
}

// TestQuoteV5 reads and verifies version 5 quotes with TD 1.0 and TD 1.5
// bodies. No real version 5 quote was at hand: these come from the test
// signer, laid out as Intel's TDX DCAP Quoting Library API (A.4) gives it.
func TestQuoteV5(t *testing.T) {
	for _, td15 := range []bool{false, true} {
		raw, roots, rd := v5Quote(t, td15)
		c, err := VerifyWith(raw, Options{Roots: roots})
		if err != nil {
			t.Fatalf("TD 1.5 body %v: %v", td15, err)
		}
		if c.Version != 5 || c.ReportData != rd || c.MRTD == ([48]byte{}) || c.Debug {
			t.Errorf("claims %+v", c)
		}
		if td15 && (string(c.TeeTcbSvn2) != string(tdxfake.TD15Extra[:16]) || c.MRServiceTD[0] != 0x5e) {
			t.Errorf("TD 1.5 fields: %x %x", c.TeeTcbSvn2, c.MRServiceTD)
		}
		if !td15 && (c.TeeTcbSvn2 != nil || c.MRServiceTD != ([48]byte{})) {
			t.Errorf("a TD 1.0 body has TD 1.5 fields: %x %x", c.TeeTcbSvn2, c.MRServiceTD)
		}
	}
}

// TestQuoteV5Tampers: a flipped byte in each part is refused, including
// the TD 1.5 fields, which the signature covers; so are a test-only chain
// against Intel's root and a request for TCB status.
func TestQuoteV5Tampers(t *testing.T) {
	raw, roots, _ := v5Quote(t, true)
	const body = 48 + 6
	sigData := body + 648 + 4
	for name, at := range map[string]int{
		"header user data":       40,
		"body type":              48,
		"body size":              50,
		"MRTD":                   body + 136,
		"report data":            body + 520,
		"TEE_TCB_SVN2":           body + 584,
		"MRSERVICETD":            body + 640,
		"signature data size":    body + 648,
		"quote signature":        sigData + 10,
		"attestation key":        sigData + 64 + 5,
		"QE report":              sigData + 128 + 6 + 100,
		"QE report signature":    sigData + 128 + 6 + 384 + 3,
		"PCK chain (near end)":   len(raw) - 300,
		"TEE type":               4,
		"attestation key type":   2,
		"version (to 4 framing)": 0,
	} {
		b := append([]byte(nil), raw...)
		b[at] ^= 1
		if _, err := VerifyWith(b, Options{Roots: roots}); !errors.Is(err, ErrQuote) {
			t.Errorf("%s (byte %d): %v", name, at, err)
		}
	}
	for _, n := range []int{10, 54, 300, body + 648 + 2, len(raw) / 2, len(raw) - 1} {
		if _, err := VerifyWith(raw[:n], Options{Roots: roots}); !errors.Is(err, ErrQuote) {
			t.Errorf("cut to %d bytes: %v", n, err)
		}
	}
	if _, err := VerifyWith(raw, Options{}); err == nil || !strings.Contains(err.Error(), "not Intel's") {
		t.Errorf("test-only chain against Intel's root: %v", err)
	}
	if _, err := VerifyWith(raw, Options{Roots: roots, Now: time.Date(2060, 1, 1, 0, 0, 0, 0, time.UTC)}); !errors.Is(err, ErrQuote) {
		t.Errorf("after the chain expired: %v", err)
	}
	if _, err := VerifyWith(raw, Options{Roots: roots, Collateral: &Collateral{}}); !errors.Is(err, ErrQuoteV5Collateral) {
		t.Errorf("collateral for a version 5 quote: %v", err)
	}
	if _, err := FetchCollateral(raw, "http://127.0.0.1:1", nil); !errors.Is(err, ErrQuoteV5Collateral) {
		t.Errorf("fetching collateral for a version 5 quote: %v", err)
	}
}

// FuzzVerifyQuote: any bytes are a verified quote or an ErrQuote; nothing
// panics, whichever version the bytes claim.
func FuzzVerifyQuote(f *testing.F) {
	f.Add(testdata.RawQuote)
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := VerifyWith(data, Options{Now: at}); err != nil && !errors.Is(err, ErrQuote) {
			t.Fatalf("unclassified: %v", err)
		}
	})
}

// BenchmarkVerifyV5 is a version 5 quote's verification (TD 1.5 body).
func BenchmarkVerifyV5(b *testing.B) {
	fake := tdxfake.New(b)
	fake.Version, fake.TD15 = 5, true
	raw, err := fake.GetRawQuote([64]byte{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := VerifyWith(raw, Options{Roots: fake.Roots()}); err != nil {
			b.Fatal(err)
		}
	}
}
