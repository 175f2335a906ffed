package snp

import (
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/google/go-sev-guest/verify/testdata"
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
