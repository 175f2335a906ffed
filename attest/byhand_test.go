package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sevtest "github.com/google/go-sev-guest/testing"
	snptestdata "github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"
	tdxtestdata "github.com/google/go-tdx-guest/testing/testdata"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemCerts(ders ...[]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

func codeOf(err error) errcode.Code { return errcode.From(err).Code }

func flipAt(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// TestVerifySNPFilesTampered: against the Milan chain exactly as AMD's KDS
// publishes it, a flipped byte in the report, the VCEK, the ASK or the
// ARK, a chain ending in a foreign ARK, and the VLEK chain for a VCEK are
// each refused with E3008; bad files get their registered code, never a
// panic or a silent fallback to the built-in chain.
func TestVerifySNPFilesTampered(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	opts := snp.Options{Product: "Milan", Now: at}
	published, err := snp.ParseChain(trust.AskArkMilanVcekBytes)
	if err != nil {
		t.Fatal(err)
	}
	ask, ark := published.Intermediate.Raw, published.ARK.Raw
	foreign, err := sevtest.DefaultTestOnlyCertChain("Milan-B0", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	report, vcek := snptestdata.AttestationBytes, snptestdata.VcekBytes
	for _, tc := range []struct {
		name                string
		report, vcek, chain []byte
		code                errcode.Code
		reason              string
	}{
		{"report byte", flipAt(report, 0x90), vcek, trust.AskArkMilanVcekBytes, errcode.EvidenceRefused, "signature"},
		{"vcek byte", report, flipAt(vcek, 233), trust.AskArkMilanVcekBytes, errcode.EvidenceRefused, "VCEK"},
		{"ask byte", report, vcek, pemCerts(flipAt(ask, 300), ark), errcode.EvidenceRefused, "not signed by AMD's ARK"},
		{"ark byte", report, vcek, pemCerts(ask, flipAt(ark, 300)), errcode.EvidenceRefused, "cannot bring its own root"},
		{"a foreign ark", report, vcek, pemCerts(foreign.Ask.Raw, foreign.Ark.Raw), errcode.EvidenceRefused, "cannot bring its own root"},
		{"the vlek chain", report, vcek, trust.AskArkMilanVlekBytes, errcode.EvidenceRefused, "VLEK chain"},
		{"an empty chain", report, vcek, []byte{}, errcode.EvidenceMalformed, "empty"},
		{"a huge chain", report, vcek, bytes.Repeat(trust.AskArkMilanVcekBytes, 20), errcode.EvidenceMalformed, "larger than"},
		{"garbage as the vcek", report, []byte("not a certificate"), trust.AskArkMilanVcekBytes, errcode.EvidenceRefused, ""},
		{"the ark as the vcek", report, ark, trust.AskArkMilanVcekBytes, errcode.EvidenceRefused, ""},
		{"garbage as the chain", report, vcek, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), errcode.EvidenceRefused, ""},
	} {
		d := t.TempDir()
		files := SNPFiles{Report: writeFile(t, d, "r", tc.report), VCEK: writeFile(t, d, "v", tc.vcek), Chain: writeFile(t, d, "c", tc.chain)}
		if c, err := VerifySNPFiles(files, opts); c != nil || codeOf(err) != tc.code || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %+v, %v; want %v %q", tc.name, c, err, tc.code, tc.reason)
		}
	}
	files := SNPFiles{Report: writeFile(t, dir, "r", report), VCEK: writeFile(t, dir, "v", vcek), Chain: filepath.Join(dir, "missing")}
	if _, err := VerifySNPFiles(files, opts); codeOf(err) != errcode.EvidenceMalformed {
		t.Errorf("a missing chain: %v", err)
	}
	files.Chain = writeFile(t, dir, "c", trust.AskArkMilanVcekBytes)
	if c, err := VerifySNPFiles(files, opts); err != nil || c.Chain != "file" {
		t.Errorf("the published chain: %+v, %v", c, err)
	}
}

// TestVerifySNPFilesVLEK: a VLEK-signed report (go-sev-guest's test-only
// signer: no module here ships a real one) verifies by hand with its VLEK
// as the VLEK, the same VLEK given as the VCEK is recognised by its
// certificate, and with the ASVK chain as a file; a tampered VLEK, a VCEK
// given as the VLEK and the ASK chain for a VLEK are refused (E3008).
func TestVerifySNPFilesVLEK(t *testing.T) {
	rd := [64]byte{5}
	dev, roots, product := snpfake.Device(t, rd, snpfake.Options{VLEK: true})
	ev, err := snp.NewBackend(dev).Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	report := writeFile(t, dir, "report.bin", ev.Raw)
	vlek := writeFile(t, dir, "vlek.der", ev.Collateral[0])
	chain := writeFile(t, dir, "cert_chain", pemCerts(dev.Signer.Asvk.Raw, dev.Signer.Ark.Raw))
	opts := snp.Options{Product: product, Now: snpfake.Now, Roots: roots}
	for name, files := range map[string]SNPFiles{
		"VLEK":               {Report: report, VLEK: vlek},
		"VLEK and chain":     {Report: report, VLEK: vlek, Chain: chain},
		"a VLEK as the VCEK": {Report: report, VCEK: vlek},
		"VCEK and chain":     {Report: report, VCEK: vlek, Chain: chain},
	} {
		c, err := VerifySNPFiles(files, opts)
		if err != nil || c.Signer != snp.SignerVLEK || c.DebugAllowed || c.SignatureChain != "valid" || c.ReportData.String() != "05"+strings.Repeat("00", 63) {
			t.Errorf("%s: %+v, %v", name, c, err)
			continue
		}
		if want := map[bool]string{true: "file", false: "built in"}[files.Chain != ""]; c.Chain != want || c.ChainFile != files.Chain {
			t.Errorf("%s: chain %q %q, want %q", name, c.Chain, c.ChainFile, want)
		}
	}
	tampered := flipAt(ev.Collateral[0], len(ev.Collateral[0])-20)
	askChain := writeFile(t, dir, "ask_chain", pemCerts(dev.Signer.Ask.Raw, dev.Signer.Ark.Raw))
	for name, tc := range map[string]struct {
		files  SNPFiles
		code   errcode.Code
		reason string
	}{
		"a tampered VLEK":       {SNPFiles{Report: report, VLEK: writeFile(t, dir, "tampered.der", tampered)}, errcode.EvidenceRefused, ""},
		"the ASK chain":         {SNPFiles{Report: report, VLEK: vlek, Chain: askChain}, errcode.EvidenceRefused, "VCEK chain"},
		"a VCEK as the VLEK":    {SNPFiles{Report: report, VLEK: writeFile(t, dir, "vcek.der", snptestdata.VcekBytes)}, errcode.EvidenceRefused, "not a VLEK"},
		"both":                  {SNPFiles{Report: report, VCEK: vlek, VLEK: vlek}, errcode.Usage, "pass one"},
		"neither":               {SNPFiles{Report: report}, errcode.Usage, "needs --vcek"},
		"an empty chain":        {SNPFiles{Report: report, VLEK: vlek, Chain: writeFile(t, dir, "empty", nil)}, errcode.EvidenceMalformed, "empty"},
		"a missing report":      {SNPFiles{Report: filepath.Join(dir, "none"), VLEK: vlek}, errcode.EvidenceMalformed, ""},
		"a directory as a VLEK": {SNPFiles{Report: report, VLEK: dir}, errcode.EvidenceMalformed, ""},
		"an oversized report":   {SNPFiles{Report: writeFile(t, dir, "big", make([]byte, maxEvidenceFile+1)), VLEK: vlek}, errcode.EvidenceMalformed, "larger than"},
		"garbage as the VLEK":   {SNPFiles{Report: report, VLEK: writeFile(t, dir, "garbage", []byte("x"))}, errcode.EvidenceRefused, ""},
	} {
		c, err := VerifySNPFiles(tc.files, opts)
		if c != nil || codeOf(err) != tc.code || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %+v, %v; want %v %q", name, c, err, tc.code, tc.reason)
		}
	}
}

// TestVerifySNPFilesPEM: the real report and VCEK go-sev-guest ships, the
// VCEK in DER or PEM, verify against AMD's built-in Milan chain at their
// pinned time, and the check's JSON carries the claims in hex.
func TestVerifySNPFilesPEM(t *testing.T) {
	dir := t.TempDir()
	report := writeFile(t, dir, "report.bin", snptestdata.AttestationBytes)
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for _, vcek := range []string{writeFile(t, dir, "vcek.der", snptestdata.VcekBytes), writeFile(t, dir, "vcek.pem", pemCerts(snptestdata.VcekBytes))} {
		c, err := VerifySNPFiles(SNPFiles{Report: report, VCEK: vcek}, snp.Options{Product: "Milan", Now: at})
		if err != nil || c.Signer != snp.SignerVCEK || c.Chain != "built in" || !c.DebugAllowed {
			t.Fatalf("%s: %+v, %v", vcek, c, err)
		}
		j, _ := json.Marshal(c)
		if !strings.Contains(string(j), `"measurement":"b07af9620f3b839b`) || !strings.Contains(string(j), `"at":"2026-11-23T00:00:00Z"`) {
			t.Errorf("JSON: %s", j)
		}
	}
}

// TestVerifyTDXFile: the real quote go-tdx-guest ships verifies at a time
// its certificates were valid, its TCB not judged without collateral; a
// tampered copy is E3008, a missing file E1022.
func TestVerifyTDXFile(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2023, 7, 1, 1, 0, 0, 0, time.UTC)
	c, err := VerifyTDXFile(writeFile(t, dir, "quote", tdxtestdata.RawQuote), tdx.Options{Now: at})
	if err != nil || c.Version != 4 || c.TCBStatus != "not judged" || len(c.RTMRs) != 4 || len(c.MRTD) != 48 || c.TeeTcbSvn2 != nil {
		t.Fatalf("%+v, %v", c, err)
	}
	bad := append([]byte(nil), tdxtestdata.RawQuote...)
	bad[48+520] ^= 1
	if _, err := VerifyTDXFile(writeFile(t, dir, "bad", bad), tdx.Options{Now: at}); codeOf(err) != errcode.EvidenceRefused || !errors.Is(err, tdx.ErrQuote) {
		t.Errorf("tampered: %v", err)
	}
	if _, err := VerifyTDXFile(filepath.Join(dir, "none"), tdx.Options{Now: at}); codeOf(err) != errcode.EvidenceMalformed {
		t.Errorf("missing: %v", err)
	}
}
