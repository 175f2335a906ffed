package kbs

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// TestRuntimeDataHashKnownAnswer: the report data KBS computes, against
// values an independent canonical JSON encoder (sorted keys, no
// whitespace, no ASCII escaping) gives, with strings that need escaping.
func TestRuntimeDataHashKnownAnswer(t *testing.T) {
	k := &JWK{Kty: "EC", Crv: CurveP256, Alg: AlgECDHESA256KW, X: "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ", Y: "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck", Kid: "not hashed"}
	for _, v := range []struct{ additional, want string }{
		{"", "3945187dbb9598b90d6d12b8ef92de71d3470de892e2a2ddfef59097e5c316440e0697b70072e773109d5950646727fe"},
		{"{\"tdx\":\"a\nb\x01<&>é\"}", "0cde6877532aef455c7473dd3fe55f4fc2a81ef966c389951e4213f7af5a1bbc4149c5143ae57b86e8b1e7e423a3a54e"},
	} {
		got := RuntimeDataHash("bm9uY2U=", k, v.additional)
		if hex.EncodeToString(got[:]) != v.want {
			t.Errorf("%q: %x", v.additional, got)
		}
	}
}

// TestDecoders: Trustee's own messages (its docs' and kbs-types' tests)
// decode; missing members, duplicates, trailing data, a key the broker
// cannot encrypt to and oversized bodies are refused.
func TestDecoders(t *testing.T) {
	good := map[string]func(string) error{
		`{"version":"0.4.0","tee":"snp","extra-params":""}`:             func(s string) error { _, err := DecodeRequest(strings.NewReader(s)); return err },
		`{"version":"0.0.0","tee":"sev","extra-params":"","unknown":1}`: func(s string) error { _, err := DecodeRequest(strings.NewReader(s)); return err },
		`{"nonce":"42","extra-params":""}`:                              func(s string) error { _, err := DecodeChallenge(strings.NewReader(s)); return err },
		`{"token":"a.b.c"}`:                                             func(s string) error { _, err := DecodeTokenResponse(strings.NewReader(s)); return err },
	}
	for s, f := range good {
		if err := f(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{
		`{"tee":"snp","extra-params":""}`,
		`{"version":"0.4.0","tee":"snp"}`,
		`{"version":"0.4.0","version":"0.3.0","tee":"snp","extra-params":""}`,
		`{"version":"0.4.0","tee":"snp","extra-params":""} {}`,
		`{"version":"0.4.0","tee":"snp","extra-params":""` + strings.Repeat(" ", MaxBody) + `}`,
		`[` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100) + `]`,
	} {
		if _, err := DecodeRequest(strings.NewReader(s)); !errors.Is(err, ErrMessage) {
			t.Errorf("request %.80q: %v", s, err)
		}
	}
	att := `{"runtime-data":{"nonce":"n","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ","y":"e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck"}},"tee-evidence":{"primary_evidence":{"quote":"AA=="},"additional_evidence":""}}`
	a, err := DecodeAttestation(strings.NewReader(att))
	if err != nil || a.RuntimeData.Nonce != "n" || string(a.TeeEvidence.PrimaryEvidence) != `{"quote":"AA=="}` {
		t.Fatalf("attestation: %v %+v", err, a)
	}
	for _, bad := range []string{
		strings.Replace(att, `"nonce":"n"`, `"nonce":""`, 1),
		strings.Replace(att, `"ECDH-ES+A256KW"`, `"ECDH-ES"`, 1),
		strings.Replace(att, `{"quote":"AA=="}`, `null`, 1),
		strings.Replace(att, `"additional_evidence":""`, `"additional_evidence":{}`, 1),
		strings.Replace(att, `"e8lnCO`, `"e9lnCO`, 1),
	} {
		if _, err := DecodeAttestation(strings.NewReader(bad)); !errors.Is(err, ErrMessage) {
			t.Errorf("attestation %s: %v", bad, err)
		}
	}
	p, err := DecodeProblem(strings.NewReader(`{"type":"https://github.com/confidential-containers/kbs/errors/PolicyDeny","detail":"Access denied by policy"}`), 401)
	if err != nil || p.Name() != ProblemPolicyDeny || p.Status != 401 {
		t.Errorf("problem %+v %v", p, err)
	}
	if np := NewProblem(ProblemResourceNotFound, "x"); np.Status != 404 {
		t.Errorf("not found is %d", np.Status)
	}
	if np := NewProblem(ProblemTokenVerifier, "x"); np.Status != 401 {
		t.Errorf("a token refused is %d", np.Status)
	}
}
