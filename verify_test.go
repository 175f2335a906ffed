package ampoule

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/tee"
)

// TestVerifyChooses: the inputs choose the check. The committed SEV-SNP
// report and TDX quote are checked by hand (the quote with the hint that
// its TCB status needs Intel's collateral); a simulator envelope is judged
// against a policy, which warns when it pins no simulator key and refuses
// (E3008, with its verdict) what is not affirming: unpinned simulator
// evidence is a warning, evidence of another measurement contraindicated.
func TestVerifyChooses(t *testing.T) {
	at := attest.Options{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	snpFiles := attest.SNPFiles{Report: filepath.Join("testdata", "snp", "report.bin"), VCEK: filepath.Join("testdata", "snp", "vcek.der"), Chain: filepath.Join("testdata", "snp", "cert_chain.pem")}
	v, err := Verify(VerifyInputs{SNP: snpFiles, Product: "Milan", Options: at})
	if c, ok := v.ByHand.(*attest.SNPCheck); err != nil || !ok || c == nil || v.Result != nil {
		t.Errorf("snp: %#v %v", v, err)
	}
	v, err = Verify(VerifyInputs{TDXQuote: filepath.Join("testdata", "tdx", "quote.dat"), Options: at})
	if c, ok := v.ByHand.(*attest.TDXCheck); err != nil || !ok || c == nil || len(v.Hints) != 1 || v.Hints[0] != HintTDXCollateral {
		t.Errorf("tdx: %#v %v", v, err)
	}
	if _, err := Verify(VerifyInputs{TDXQuote: "missing.dat"}); errcode.From(err).Code != errcode.EvidenceMalformed || !strings.Contains(err.Error(), "--tdx-quote") {
		t.Errorf("tdx, a missing quote: %v", err)
	}

	nonce := []byte("a verifier's nonce")
	key := filepath.Join(t.TempDir(), "sim.key")
	env, err := Attest(context.Background(), filepath.Join("testdata", "tiny"), AttestConfig{Profile: "debug", Backend: "sim", SimKey: key, Nonce: nonce, Warnings: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	data, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	envelope := write(t, "evidence.json", string(data))
	m, err := Measure(filepath.Join("testdata", "tiny"), "debug")
	if err != nil {
		t.Fatal(err)
	}
	policy := "profiles = [\"debug\"]\nbackends = [\"sim\"]\nallow_insecure = true\nmeasurements = [\"%s\"]\n"
	good := write(t, "good.toml", strings.Replace(policy, "%s", m.Measurement, 1))
	v, err = Verify(VerifyInputs{Envelope: envelope, Policy: good, Options: attest.Options{Nonce: nonce, Now: time.Now()}})
	if v.Result == nil || len(v.Warnings) != 1 || v.Warnings[0] != WarningUnpinned {
		t.Fatalf("envelope: %#v %v", v, err)
	}
	// Unpinned simulator evidence is at best a warning, which is no pass.
	if v.Result.Status != attest.Warning || errcode.From(err).Code != errcode.EvidenceRefused {
		t.Errorf("envelope against its own measurement: %s %v %v", v.Result.Status, v.Result.Reasons, err)
	}
	other := write(t, "other.toml", strings.Replace(policy, "%s", strings.Repeat("ab", 48), 1))
	v, err = Verify(VerifyInputs{Envelope: envelope, Policy: other, Options: attest.Options{Nonce: nonce, Now: time.Now()}})
	if errcode.From(err).Code != errcode.EvidenceRefused || v.Result == nil || v.Result.Status != attest.Contraindicated {
		t.Errorf("envelope of another measurement: %#v %v", v, err)
	}
	if _, err := Verify(VerifyInputs{Envelope: envelope, Policy: "missing.toml"}); errcode.From(err).Code != errcode.PolicyInvalid || !strings.Contains(err.Error(), "--policy") {
		t.Errorf("a missing policy: %v", err)
	}
}

// TestVerificationShows: what a check found is shown as its verdict when
// an envelope was judged, else as the by-hand check's fields, a line each;
// a check that found nothing shows nothing.
func TestVerificationShows(t *testing.T) {
	at := attest.Options{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	v, err := Verify(VerifyInputs{TDXQuote: filepath.Join("testdata", "tdx", "quote.dat"), Options: at})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	v.WriteText(&b)
	if v.Found() != v.ByHand || strings.Count(b.String(), "\n") < 3 {
		t.Errorf("by hand: %v\n%s", v.Found(), b.String())
	}
	r := &attest.Result{Status: attest.Affirming}
	v = Verification{ByHand: v.ByHand, Result: r}
	b.Reset()
	v.WriteText(&b)
	var want strings.Builder
	r.WriteText(&want)
	if v.Found() != r || b.String() != want.String() {
		t.Errorf("verdict: %v\n%s", v.Found(), b.String())
	}
	b.Reset()
	Verification{}.WriteText(&b)
	if b.Len() != 0 || (Verification{}).Found() != nil {
		t.Errorf("nothing found shows %q", b.String())
	}
}

// TestVerifyPinnedRTMRsOfARealQuote: the TDX quote go-tdx-guest ships
// (testdata/tdx/quote.dat), in an envelope judged against a policy that
// pins its own RTMR0 to RTMR2, passes the tdx_rtmrs check (it is still
// refused, for its report data binds nothing of ours); one pinned RTMR
// differing by a byte is refused as E3008 naming the register.
func TestVerifyPinnedRTMRsOfARealQuote(t *testing.T) {
	at := time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)
	quote := filepath.Join("testdata", "tdx", "quote.dat")
	v, err := Verify(VerifyInputs{TDXQuote: quote, Options: attest.Options{Now: at}})
	if err != nil {
		t.Fatal(err)
	}
	rtmrs := v.ByHand.(*attest.TDXCheck).RTMRs
	raw, err := os.ReadFile(quote)
	if err != nil {
		t.Fatal(err)
	}
	m := strings.Repeat("4d", 48)
	nonce := []byte("a verifier's nonce")
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	env := &tee.Envelope{Version: tee.EnvelopeVersion, Kind: tee.KindTDX, Evidence: raw, Measurement: m, Profile: "production",
		RuntimeKey: key.PublicKey().Bytes(), Nonce: nonce, Issued: at}
	data, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	envelope := write(t, "evidence.json", string(data))
	policy := func(rtmr1 string) string {
		return write(t, "policy.toml", fmt.Sprintf("measurements = [%q]\nprofiles = [\"production\"]\nbackends = [\"tdx\"]\nallow_debug = true\n[tdx_rtmrs]\nrtmr0 = %q\nrtmr1 = %q\nrtmr2 = %q\n",
			m, hex.EncodeToString(rtmrs[0]), rtmr1, hex.EncodeToString(rtmrs[2])))
	}
	opts := attest.Options{Nonce: nonce, Now: at}
	v, err = Verify(VerifyInputs{Envelope: envelope, Policy: policy(hex.EncodeToString(rtmrs[1])), Options: opts})
	if v.Result == nil || errcode.From(err).Code != errcode.EvidenceRefused {
		t.Fatalf("the real quote: %#v %v", v, err)
	}
	reasons := strings.Join(v.Result.Reasons, "; ")
	if !strings.Contains(reasons, "report data") || strings.Contains(reasons, "tdx_rtmrs") {
		t.Errorf("its own RTMRs pinned: %s", reasons)
	}
	wrong := bytes.Clone(rtmrs[1])
	wrong[47] ^= 1
	v, err = Verify(VerifyInputs{Envelope: envelope, Policy: policy(hex.EncodeToString(wrong)), Options: opts})
	if errcode.From(err).Code != errcode.EvidenceRefused || !strings.Contains(err.Error(), "is not the policy's tdx_rtmrs.rtmr1") ||
		strings.Contains(err.Error(), "tdx_rtmrs.rtmr0") || strings.Contains(err.Error(), "tdx_rtmrs.rtmr2") {
		t.Errorf("RTMR1 pinned wrong: %v", err)
	}
}
