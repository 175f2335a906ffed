package main

import (
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	snptestdata "github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/tee/snp"
)

// TestVerifySNPWithPublishedChain: through the command, the real report
// and VCEK go-sev-guest ships, with the Milan chain as AMD's KDS publishes
// it, verify at their pinned time, as text and as JSON (the VCEK in PEM);
// the flags that go together are checked (E1001, exit 2), a refused chain
// exits 3 and an empty chain file 2. attest's TestVerifySNPFilesTampered
// checks each tampering and bad file.
func TestVerifySNPWithPublishedChain(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{"report.bin": snptestdata.AttestationBytes, "vcek.der": snptestdata.VcekBytes, "cert_chain": trust.AskArkMilanVcekBytes,
		"vcek.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: snptestdata.VcekBytes}), "vlek_chain": trust.AskArkMilanVlekBytes, "empty": nil}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	report, vcek, chain := filepath.Join(dir, "report.bin"), filepath.Join(dir, "vcek.der"), filepath.Join(dir, "cert_chain")
	const at = "2026-11-23T00:00:00Z"
	r := launch(t, "verify", "--snp-report", report, "--vcek", vcek, "--chain", chain, "--at", at)
	if r.code != 0 || !regexp.MustCompile(`(?m)^signer: +VCEK$`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^chain file: +`+regexp.QuoteMeta(chain)+`$`).MatchString(r.stdout) || !strings.Contains(r.stdout, "b07af9620f3b839b") {
		t.Fatalf("%+v", r)
	}
	if r := launch(t, "verify", "--snp-report", report, "--vcek", filepath.Join(dir, "vcek.pem"), "--chain", chain, "--at", at, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"signer": "VCEK"`) || !strings.Contains(r.stdout, `"chain": "file"`) {
		t.Errorf("PEM VCEK, JSON: %+v", r)
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
	for _, tc := range []struct {
		chain string
		code  errcode.Code
	}{{"vlek_chain", errcode.EvidenceRefused}, {"empty", errcode.EvidenceMalformed}} {
		r := launch(t, "verify", "--snp-report", report, "--vcek", vcek, "--chain", filepath.Join(dir, tc.chain), "--at", at)
		if r.code != tc.code.Class().ExitStatus() || !strings.Contains(r.stderr, tc.code.String()) {
			t.Errorf("--chain %s: %+v, want %v", tc.chain, r, tc.code)
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
	report, vlek := filepath.Join(dir, "report.bin"), filepath.Join(dir, "vlek.der")
	os.WriteFile(report, ev.Raw, 0o644)
	os.WriteFile(vlek, ev.Collateral[0], 0o644)
	if r := launch(t, "verify", "--snp-report", report, "--vlek", vlek, "--product", product, "--at", snpfake.Now.Format(time.RFC3339)); r.code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(r.stderr, errcode.EvidenceRefused.String()) {
		t.Errorf("a test-only VLEK against AMD's roots: %+v", r)
	}
}
