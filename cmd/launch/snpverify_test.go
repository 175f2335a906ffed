package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	sevtest "github.com/google/go-sev-guest/testing"
	snptestdata "github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/tee/snp"
)

func pemCerts(ders ...[]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func flipAt(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// TestVerifySNPWithPublishedChain: the real report and VCEK go-sev-guest
// ships, with the Milan chain exactly as AMD's KDS publishes it, verify at
// their pinned time; a flipped byte in the report, the VCEK, the ASK or
// the ARK, a chain ending in a foreign ARK, and the VLEK chain for a VCEK
// are each refused with E3008.
func TestVerifySNPWithPublishedChain(t *testing.T) {
	dir := t.TempDir()
	report := writeFile(t, dir, "report.bin", snptestdata.AttestationBytes)
	vcek := writeFile(t, dir, "vcek.der", snptestdata.VcekBytes)
	chain := writeFile(t, dir, "cert_chain", trust.AskArkMilanVcekBytes)
	const at = "2026-11-23T00:00:00Z"
	r := launch(t, "verify", "--snp-report", report, "--vcek", vcek, "--chain", chain, "--at", at)
	if r.code != 0 || !regexp.MustCompile(`(?m)^signer: +VCEK$`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^chain file: +`+regexp.QuoteMeta(chain)+`$`).MatchString(r.stdout) || !strings.Contains(r.stdout, "b07af9620f3b839b") {
		t.Fatalf("%+v", r)
	}
	// The VCEK in PEM, and the JSON form.
	pemVCEK := writeFile(t, dir, "vcek.pem", pemCerts(snptestdata.VcekBytes))
	if r := launch(t, "verify", "--snp-report", report, "--vcek", pemVCEK, "--chain", chain, "--at", at, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"signer": "VCEK"`) || !strings.Contains(r.stdout, `"chain": "file"`) {
		t.Errorf("PEM VCEK, JSON: %+v", r)
	}
	published, err := snp.ParseChain(trust.AskArkMilanVcekBytes)
	if err != nil {
		t.Fatal(err)
	}
	ask, ark := published.Intermediate.Raw, published.ARK.Raw
	foreign, err := sevtest.DefaultTestOnlyCertChain("Milan-B0", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                string
		report, vcek, chain []byte
		reason              string
	}{
		{"report byte", flipAt(snptestdata.AttestationBytes, 0x90), snptestdata.VcekBytes, trust.AskArkMilanVcekBytes, "signature"},
		{"vcek byte", snptestdata.AttestationBytes, flipAt(snptestdata.VcekBytes, 233), trust.AskArkMilanVcekBytes, "VCEK"},
		{"ask byte", snptestdata.AttestationBytes, snptestdata.VcekBytes, pemCerts(flipAt(ask, 300), ark), "not signed by AMD's ARK"},
		{"ark byte", snptestdata.AttestationBytes, snptestdata.VcekBytes, pemCerts(ask, flipAt(ark, 300)), "cannot bring its own root"},
		{"a foreign ark", snptestdata.AttestationBytes, snptestdata.VcekBytes, pemCerts(foreign.Ask.Raw, foreign.Ark.Raw), "cannot bring its own root"},
		{"the vlek chain", snptestdata.AttestationBytes, snptestdata.VcekBytes, trust.AskArkMilanVlekBytes, "VLEK chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			r := launch(t, "verify", "--snp-report", writeFile(t, d, "r", tc.report), "--vcek", writeFile(t, d, "v", tc.vcek), "--chain", writeFile(t, d, "c", tc.chain), "--at", at)
			if r.code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(r.stderr, errcode.EvidenceRefused.String()) || !strings.Contains(r.stderr, tc.reason) {
				t.Errorf("got %+v, want E3008 for %q", r, tc.reason)
			}
		})
	}
	for name, args := range map[string][]string{
		"--vcek and --vlek":           {"--snp-report", report, "--vcek", vcek, "--vlek", vcek},
		"--chain without a report":    {"--chain", chain},
		"--vlek without a report":     {"--vlek", vcek},
		"a report without its signer": {"--snp-report", report},
	} {
		if r := launch(t, append(append([]string{"verify"}, args...), "--at", at)...); r.code != errcode.ClassUsage.ExitStatus() {
			t.Errorf("%s: %+v", name, r)
		}
	}
	// Bad files get their registered code, never a panic or a silent
	// fallback to the built-in chain.
	for _, tc := range []struct {
		name        string
		vcek, chain string
		code        errcode.Code
	}{
		{"an empty chain", vcek, writeFile(t, dir, "empty", nil), errcode.EvidenceMalformed},
		{"a huge chain", vcek, writeFile(t, dir, "huge", bytes.Repeat(trust.AskArkMilanVcekBytes, 20)), errcode.EvidenceMalformed},
		{"a missing chain", vcek, filepath.Join(dir, "missing"), errcode.EvidenceMalformed},
		{"garbage as the vcek", writeFile(t, dir, "garbage", []byte("not a certificate")), chain, errcode.EvidenceRefused},
		{"the ark as the vcek", writeFile(t, dir, "ark.der", ark), chain, errcode.EvidenceRefused},
		{"garbage as the chain", vcek, writeFile(t, dir, "garbage-chain", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")), errcode.EvidenceRefused},
	} {
		if r := launch(t, "verify", "--snp-report", report, "--vcek", tc.vcek, "--chain", tc.chain, "--at", at); r.code != tc.code.Class().ExitStatus() || !strings.Contains(r.stderr, tc.code.String()) {
			t.Errorf("%s: %+v, want %v", tc.name, r, tc.code)
		}
	}
	if r := launch(t, "verify", "--snp-report", report, "--vlek", vcek, "--at", at); r.code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(r.stderr, "not a VLEK") {
		t.Errorf("a VCEK as --vlek: %+v", r)
	}
}

// TestVerifySNPTestOnlyVLEK: through the command, against AMD's real
// roots, a report signed by go-sev-guest's test-only VLEK is refused
// (attest's TestVerifySNPFilesVLEK checks the same files verify against
// their own roots).
func TestVerifySNPTestOnlyVLEK(t *testing.T) {
	rd := [64]byte{5}
	dev, _, product := snpfake.Device(t, rd, snpfake.Options{VLEK: true})
	ev, err := snp.NewBackend(dev).Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	report := writeFile(t, dir, "report.bin", ev.Raw)
	vlek := writeFile(t, dir, "vlek.der", ev.Collateral[0])
	if r := launch(t, "verify", "--snp-report", report, "--vlek", vlek, "--product", product, "--at", snpfake.Now.Format(time.RFC3339)); r.code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(r.stderr, errcode.EvidenceRefused.String()) {
		t.Errorf("a test-only VLEK against AMD's roots: %+v", r)
	}
}
