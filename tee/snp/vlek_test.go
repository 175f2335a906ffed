package snp_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevtest "github.com/google/go-sev-guest/testing"

	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/snp"
)

// No module here ships a real VLEK-signed report or a real VLEK: these
// tests use go-sev-guest's test-only signer, whose VLEK (CN SEV-VLEK, a
// CSP_ID, issued by an ASVK under a test-only ARK) is shaped like AMD's.

func pemOf(ders ...[]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

// vlekEvidence is a VLEK-signed report from the fake device (whose table,
// as a cloud provider's host gives it, holds no VCEK), the certificate the
// backend took from the table, and the device.
func vlekEvidence(t *testing.T, rd [64]byte) (tee.Evidence, *snp.Roots, string, *sevtest.Device) {
	t.Helper()
	dev, roots, product := snpfake.Device(t, rd, snpfake.Options{VLEK: true})
	ev, err := snp.NewBackend(dev).Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	return ev, roots, product, dev
}

// TestVLEKReportVerifies: a VLEK-signed report (version 3, SIGNING_KEY 1)
// verifies with the VLEK the backend carries from the certificate table,
// against the ASVK of the roots, and with the ASVK chain as a file; a
// flipped byte in the VLEK, the VLEK's chain under a foreign ARK or judged
// before its ASVK is valid, an intermediate that is no CA, the ASK chain, roots without an ASVK, and
// AMD's real roots are each refused.
func TestVLEKReportVerifies(t *testing.T) {
	rd := tee.ReportData([48]byte{9}, []byte("key"), []byte("nonce"))
	ev, roots, product, dev := vlekEvidence(t, rd)
	cert, err := x509.ParseCertificate(ev.Collateral[0])
	if err != nil || cert.Subject.CommonName != "SEV-VLEK" {
		t.Fatalf("the backend carried %v (%v), not the VLEK", cert.Subject, err)
	}
	opts := snp.Options{Product: product, Now: snpfake.Now, Roots: roots}
	c, err := snp.Verify(ev.Raw, ev.Collateral[0], opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.Signer != snp.SignerVLEK || c.Version != 3 || c.ReportData != rd || c.Debug {
		t.Errorf("claims %+v", c)
	}
	signer := dev.Signer
	withChain := opts
	withChain.Chain = pemOf(signer.Asvk.Raw, signer.Ark.Raw)
	if _, err := snp.Verify(ev.Raw, ev.Collateral[0], withChain); err != nil {
		t.Errorf("with the ASVK chain: %v", err)
	}
	foreign, err := sevtest.DefaultTestOnlyCertChain(product, snpfake.Now.AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	// An intermediate with the ASVK's name and key, signed by the ARK, but
	// not a CA.
	notCA, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(7), Subject: signer.Asvk.Subject,
		NotBefore: signer.Asvk.NotBefore, NotAfter: signer.Asvk.NotAfter, BasicConstraintsValid: true}, signer.Ark, signer.Keys.Asvk.Public(), signer.Keys.Ark)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), ev.Collateral[0]...)
	flipped[len(flipped)-20] ^= 1 // in the ASVK's signature over the VLEK
	for _, tc := range []struct {
		name   string
		cert   []byte
		opts   func(snp.Options) snp.Options
		reason string
	}{
		{"flipped vlek byte", flipped, func(o snp.Options) snp.Options { return o }, "VLEK"},
		{"the vlek chain under a foreign ark", ev.Collateral[0], func(o snp.Options) snp.Options {
			o.Chain = pemOf(signer.Asvk.Raw, foreign.Ark.Raw)
			return o
		}, "cannot bring its own root"},
		{"the chain before its asvk is valid", ev.Collateral[0], func(o snp.Options) snp.Options {
			o.Chain, o.Now = pemOf(signer.Asvk.Raw, signer.Ark.Raw), signer.Asvk.NotBefore.Add(-time.Minute)
			return o
		}, "is not valid at"},
		{"an intermediate that is no ca", ev.Collateral[0], func(o snp.Options) snp.Options { o.Chain = pemOf(notCA, signer.Ark.Raw); return o }, "not a CA"},
		{"the ask chain", ev.Collateral[0], func(o snp.Options) snp.Options { o.Chain = pemOf(signer.Ask.Raw, signer.Ark.Raw); return o }, "VCEK chain (ASK)"},
		{"roots without an asvk", ev.Collateral[0], func(o snp.Options) snp.Options {
			o.Roots = snp.NewRoots(sevtest.GetProductLine(), signer.Ark, signer.Ask, nil)
			return o
		}, "no ASVK"},
		{"amd's real roots", ev.Collateral[0], func(o snp.Options) snp.Options { o.Roots = nil; return o }, "VLEK"},
		{"the vcek for a vlek report", signer.Vcek.Raw, func(o snp.Options) snp.Options { return o }, "signed by its VLEK, and the certificate given is a VCEK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := snp.Verify(ev.Raw, tc.cert, tc.opts(opts)); !errors.Is(err, snp.ErrReport) || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("got %v, want a refusal for %q", err, tc.reason)
			}
		})
	}
}

// TestAttestTakesTheSigningCertificate: from a table holding both a VCEK
// and a VLEK (go-sev-guest's full fake table), the backend carries the
// certificate of the key the report names: the VLEK for a VLEK-signed
// report, the VCEK for a VCEK-signed one; a table without the signer's
// certificate is an error, not the other one.
func TestAttestTakesTheSigningCertificate(t *testing.T) {
	rd := [64]byte{3}
	for _, vlek := range []bool{true, false} {
		dev, roots, product := snpfake.Device(t, rd, snpfake.Options{VLEK: vlek})
		dev.Certs, _ = dev.Signer.CertTableBytes()
		ev, err := snp.NewBackend(dev).Attest(context.Background(), rd)
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{true: "SEV-VLEK", false: "SEV-VCEK"}[vlek]
		if cert, err := x509.ParseCertificate(ev.Collateral[0]); err != nil || cert.Subject.CommonName != want {
			t.Errorf("VLEK-signed %v: the backend carried %v (%v)", vlek, cert.Subject, err)
		}
		if _, err := snp.Verify(ev.Raw, ev.Collateral[0], snp.Options{Product: product, Now: snpfake.Now, Roots: roots}); err != nil {
			t.Errorf("VLEK-signed %v: %v", vlek, err)
		}
		// The table without the signer's certificate.
		chain := &spb.CertificateChain{ArkCert: dev.Signer.Ark.Raw, VcekCert: dev.Signer.Vcek.Raw}
		if !vlek {
			chain = &spb.CertificateChain{ArkCert: dev.Signer.Ark.Raw, VlekCert: dev.Signer.Vlek.Raw}
		}
		dev.Certs = abi.CertsFromProto(chain).Marshal()
		if _, err := snp.NewBackend(dev).Attest(context.Background(), rd); err == nil || !strings.Contains(err.Error(), "has no") {
			t.Errorf("VLEK-signed %v, a table without its certificate: %v", vlek, err)
		}
	}
}

// TestDebugBitIsTheReports: a report whose guest policy has DEBUG clear
// verifies with Debug false, one with DEBUG set with Debug true, signed by
// either key: the claim is the report's, not the fixture's.
func TestDebugBitIsTheReports(t *testing.T) {
	for _, o := range []snpfake.Options{{}, {Debug: true}, {VLEK: true}, {VLEK: true, Debug: true}} {
		rd := [64]byte{4}
		b, roots, product := snpfake.BackendWith(t, rd, o)
		ev, err := b.Attest(context.Background(), rd)
		if err != nil {
			t.Fatal(err)
		}
		c, err := snp.Verify(ev.Raw, ev.Collateral[0], snp.Options{Product: product, Now: snpfake.Now, Roots: roots})
		if err != nil {
			t.Fatal(err)
		}
		if c.Debug != o.Debug || (c.Policy&(1<<19) != 0) != o.Debug {
			t.Errorf("%+v: debug %v, policy %#x", o, c.Debug, c.Policy)
		}
		if d, err := snp.ReportDebug(ev.Raw); err != nil || d != o.Debug {
			t.Errorf("%+v: ReportDebug = %v, %v", o, d, err)
		}
	}
	if _, err := snp.ReportDebug(make([]byte, 100)); err == nil {
		t.Error("ReportDebug read a truncated report")
	}
}
