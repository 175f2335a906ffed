package snp

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	sevtest "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"
)

// The report and VCEK are real captured evidence that go-sev-guest ships in
// its module (a Milan guest launched without an ID block).
var at = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func TestRealReportVerifies(t *testing.T) {
	c, err := Verify(testdata.AttestationBytes, testdata.VcekBytes, Options{Product: "Milan", Now: at})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(c.Measurement[:]); got != "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01" {
		t.Errorf("measurement %s", got)
	}
	if want := (TCB{Bootloader: 2, TEE: 0, SNP: 5, Microcode: 68}); c.TCB != want {
		t.Errorf("TCB %+v, want %+v (the levels its VCEK was issued for)", c.TCB, want)
	}
	if ok, _ := c.TCB.AtLeast(TCB{Bootloader: 2, SNP: 5, Microcode: 68}); !ok {
		t.Error("TCB below its own levels")
	}
	if ok, why := c.TCB.AtLeast(TCB{SNP: 6}); ok || why != "snp 5 < 6" {
		t.Errorf("AtLeast(snp 6) = %v %q", ok, why)
	}
	if c.ReportData[0] != 1 || c.ReportData[4] != 5 || !c.Debug || c.Policy != 0xb0000 {
		t.Errorf("claims %+v", c)
	}
}

func TestEveryTamperIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		report func([]byte) []byte
		vcek   []byte
		opts   Options
	}{
		{"report byte", func(b []byte) []byte { b[0x90] ^= 1; return b }, testdata.VcekBytes, Options{Now: at}},
		{"report data", func(b []byte) []byte { b[0x50] ^= 1; return b }, testdata.VcekBytes, Options{Now: at}},
		{"signature", func(b []byte) []byte { b[0x2a0] ^= 1; return b }, testdata.VcekBytes, Options{Now: at}},
		{"truncated", func(b []byte) []byte { return b[:1000] }, testdata.VcekBytes, Options{Now: at}},
		{"not a certificate", func(b []byte) []byte { return b }, []byte("not der"), Options{Now: at}},
		{"vcek byte", func(b []byte) []byte { return b }, flip(testdata.VcekBytes, 400), Options{Now: at}},
		{"after the vcek expires", func(b []byte) []byte { return b }, testdata.VcekBytes, Options{Now: time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"before the vcek was issued", func(b []byte) []byte { return b }, testdata.VcekBytes, Options{Now: time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"other product", func(b []byte) []byte { return b }, testdata.VcekBytes, Options{Product: "Genoa", Now: at}},
		{"unknown product", func(b []byte) []byte { return b }, testdata.VcekBytes, Options{Product: "Naples", Now: at}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.report(append([]byte(nil), testdata.AttestationBytes...))
			if _, err := Verify(raw, tc.vcek, tc.opts); !errors.Is(err, ErrReport) {
				t.Errorf("accepted (%v)", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// BenchmarkVerify is the offline verification of a real report with its
// VCEK: signature and chain, no network.
func BenchmarkVerify(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Verify(testdata.AttestationBytes, testdata.VcekBytes, Options{Now: at}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWithChain is BenchmarkVerify with AMD's published chain
// as a file: its parse, the ARK comparison and the ASK's signature check
// added.
func BenchmarkVerifyWithChain(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Verify(testdata.AttestationBytes, testdata.VcekBytes, Options{Now: at, Chain: trust.AskArkMilanVcekBytes}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerifyReport: any report bytes, with the real VCEK, verify or fail
// with ErrReport; nothing panics.
func FuzzVerifyReport(f *testing.F) {
	f.Add(testdata.AttestationBytes)
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := Verify(data, testdata.VcekBytes, Options{Product: "Milan", Now: at}); err != nil && !errors.Is(err, ErrReport) {
			t.Fatalf("unclassified: %v", err)
		}
	})
}

// pemOf encodes DER certificates as AMD's KDS serves a chain.
func pemOf(ders ...[]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

// publishedChain is the real Milan VCEK chain (ASK, ARK) as AMD's KDS
// serves it at /vcek/v1/Milan/cert_chain, which go-sev-guest ships.
func publishedChain(t testing.TB) *Chain {
	t.Helper()
	c, err := ParseChain(trust.AskArkMilanVcekBytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRealReportWithPublishedChain: the real report, its real VCEK and the
// chain AMD publishes verify together at the pinned time; the chain's
// certificates are AMD's (its ARK is the one go-sev-guest embeds).
func TestRealReportWithPublishedChain(t *testing.T) {
	c, err := Verify(testdata.AttestationBytes, testdata.VcekBytes, Options{Product: "Milan", Now: at, Chain: trust.AskArkMilanVcekBytes})
	if err != nil {
		t.Fatal(err)
	}
	if c.Signer != SignerVCEK || c.ReportData[0] != 1 {
		t.Errorf("claims %+v", c)
	}
	chain := publishedChain(t)
	if chain.VLEK || chain.Intermediate.Subject.CommonName != "SEV-Milan" || chain.ARK.Subject.CommonName != "ARK-Milan" {
		t.Errorf("the published VCEK chain read as %+v", chain)
	}
	vlek, err := ParseChain(trust.AskArkMilanVlekBytes)
	if err != nil || !vlek.VLEK || !vlek.ARK.Equal(chain.ARK) {
		t.Errorf("the published VLEK chain: %v", err)
	}
	if embeddedASVK()["Milan"] == nil || !embeddedASVK()["Milan"].Equal(vlek.Intermediate) {
		t.Error("the embedded ASVK for Milan is missing or is not the published one")
	}
}

// TestChainTampersAreRefused: with the published chain, a flipped byte in
// the report, the VCEK, the ASK or the ARK, a chain ending in another root,
// another product's chain, the VLEK chain for a VCEK, and malformed chain
// files are each refused, with the reason.
func TestChainTampersAreRefused(t *testing.T) {
	real := publishedChain(t)
	ask, ark := real.Intermediate.Raw, real.ARK.Raw
	// A byte inside the signed part of a certificate (the ASK's and ARK's
	// RSA modulus, the VCEK's validity): it still parses, and its
	// signature no longer holds.
	flipped := func(der []byte, at int) []byte {
		c := flip(der, at)
		if _, err := x509.ParseCertificate(c); err != nil {
			t.Fatalf("the flipped certificate does not parse: %v", err)
		}
		return c
	}
	fake, err := sevtest.DefaultTestOnlyCertChain("Milan-B0", at.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	genoa, err := ParseChain(trust.AskArkGenoaVcekBytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		report, vcek []byte
		chain        []byte
		reason       string
	}{
		{"report byte", flip(testdata.AttestationBytes, 0x90), testdata.VcekBytes, trust.AskArkMilanVcekBytes, "signature"},
		{"vcek byte", testdata.AttestationBytes, flipped(testdata.VcekBytes, 233), trust.AskArkMilanVcekBytes, "error verifying VCEK certificate"},
		{"ask byte", testdata.AttestationBytes, testdata.VcekBytes, pemOf(flipped(ask, 300), ark), "not signed by AMD's ARK"},
		{"ark byte", testdata.AttestationBytes, testdata.VcekBytes, pemOf(ask, flipped(ark, 300)), "cannot bring its own root"},
		{"a foreign ark", testdata.AttestationBytes, testdata.VcekBytes, pemOf(fake.Ask.Raw, fake.Ark.Raw), "cannot bring its own root"},
		{"the ask under a foreign ark", testdata.AttestationBytes, testdata.VcekBytes, pemOf(ask, fake.Ark.Raw), "cannot bring its own root"},
		{"a foreign ask under the real ark", testdata.AttestationBytes, testdata.VcekBytes, pemOf(fake.Ask.Raw, ark), "not signed by AMD's ARK"},
		{"genoa's chain", testdata.AttestationBytes, testdata.VcekBytes, trust.AskArkGenoaVcekBytes, "cannot bring its own root"},
		{"genoa's ask under milan's ark", testdata.AttestationBytes, testdata.VcekBytes, pemOf(genoa.Intermediate.Raw, ark), "not Milan's"},
		{"the vlek chain for a vcek", testdata.AttestationBytes, testdata.VcekBytes, trust.AskArkMilanVlekBytes, "VLEK chain"},
		{"the ark alone", testdata.AttestationBytes, testdata.VcekBytes, pemOf(ark), "not an ASK or ASVK and an ARK"},
		{"three certificates", testdata.AttestationBytes, testdata.VcekBytes, pemOf(ask, ark, ark), "not an ASK or ASVK and an ARK"},
		{"not pem", testdata.AttestationBytes, testdata.VcekBytes, ask, "not an ASK or ASVK and an ARK"},
		{"ark first", testdata.AttestationBytes, testdata.VcekBytes, pemOf(ark, ask), "cannot bring its own root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.report, tc.vcek, Options{Product: "Milan", Now: at, Chain: tc.chain})
			if !errors.Is(err, ErrReport) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("got %v, want a refusal for %q", err, tc.reason)
			}
		})
	}
}

// TestCertificateKind: the signer's kind comes from its certificate; the
// real VCEK reads as one, and a certificate claiming to be a VLEK while
// naming a chip (or anything else) is refused before any signature check.
func TestCertificateKind(t *testing.T) {
	if _, kind, err := endorsement(testdata.VcekBytes); err != nil || kind != abi.VcekReportSigner {
		t.Errorf("the real VCEK: %v %v", kind, err)
	}
	for name, der := range map[string][]byte{"the ark": publishedChain(t).ARK.Raw, "the ask": publishedChain(t).Intermediate.Raw, "not der": []byte("x")} {
		if _, _, err := endorsement(der); !errors.Is(err, ErrReport) {
			t.Errorf("%s read as an endorsement key: %v", name, err)
		}
	}
}

// FuzzParseChain: any chain file parses or fails with ErrReport; nothing
// panics, and what parses has both certificates.
func FuzzParseChain(f *testing.F) {
	f.Add(trust.AskArkMilanVcekBytes)
	f.Add(trust.AskArkMilanVlekBytes)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseChain(data)
		if err != nil {
			if !errors.Is(err, ErrReport) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if c.Intermediate == nil || c.ARK == nil {
			t.Fatal("a chain without its certificates")
		}
	})
}
