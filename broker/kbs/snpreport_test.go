package kbs

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/verify"

	"github.com/ampoule-run/ampoule/tee/snp"
)

// TestSNPReportFromTrustee: Trustee's e2e SEV-SNP evidence (the report
// as the sev crate writes it, and its VCEK) becomes the raw report whose
// signature the VCEK verifies up to AMD's Genoa roots: every member at
// its offset. A member missing, short or not a byte is refused.
func TestSNPReportFromTrustee(t *testing.T) {
	data, err := os.ReadFile("../testdata/trustee/snp-evidence.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev SNPEvidence
	if err := json.Unmarshal(data, &ev); err != nil || len(ev.CertChain) != 1 || ev.CertChain[0].CertType != "VCEK" {
		t.Fatalf("%v %+v", err, ev.CertChain)
	}
	raw, err := SNPReportFromTrustee(ev.AttestationReport)
	if err != nil {
		t.Fatal(err)
	}
	vcek, err := ev.CertChain[0].CertDER()
	if err != nil {
		t.Fatal(err)
	}
	// The report's own signature by its VCEK, over the bytes as laid
	// out: the layout is AMD's. (The whole chain is not judged: the chip
	// is family 19h model A0h, which go-sev-guest maps to no product line,
	// so snp.Verify refuses it before the signature.)
	cert, err := x509.ParseCertificate(vcek)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.SnpReportSignature(raw, cert); err != nil {
		t.Fatalf("Trustee's report does not verify under its VCEK: %v", err)
	}
	if _, err := snp.Verify(raw, vcek, snp.Options{Product: "Genoa", Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil || !strings.Contains(err.Error(), "trusted roots") {
		t.Errorf("the chain of a model go-sev-guest does not know: %v", err)
	}
	// One byte of the measurement changed: the signature no longer holds.
	var m map[string]json.RawMessage
	json.Unmarshal(ev.AttestationReport, &m)
	var meas []int
	json.Unmarshal(m["measurement"], &meas)
	meas[0] ^= 1
	m["measurement"], _ = json.Marshal(meas)
	altered, _ := json.Marshal(m)
	raw2, err := SNPReportFromTrustee(altered)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.SnpReportSignature(raw2, cert); err == nil {
		t.Error("an altered report verified")
	}
	for _, bad := range []string{
		strings.Replace(string(ev.AttestationReport), `"chip_id":[`, `"chip_id":[1,`, 1),
		strings.Replace(string(ev.AttestationReport), `"version":3`, `"version":2`, 1),
		strings.Replace(string(ev.AttestationReport), `"vmpl":0,`, ``, 1),
		strings.Replace(string(ev.AttestationReport), `"report_data":[126`, `"report_data":[256`, 1),
	} {
		if _, err := SNPReportFromTrustee([]byte(bad)); !errors.Is(err, ErrMessage) {
			t.Errorf("accepted a bad report: %v", err)
		}
	}
}

func FuzzSNPReportFromTrustee(f *testing.F) {
	if data, err := os.ReadFile("../testdata/trustee/snp-evidence.json"); err == nil {
		var ev SNPEvidence
		json.Unmarshal(data, &ev)
		f.Add([]byte(ev.AttestationReport))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if raw, err := SNPReportFromTrustee(data); err == nil && len(raw) != SNPReportSize {
			t.Fatalf("%d bytes", len(raw))
		}
	})
}
