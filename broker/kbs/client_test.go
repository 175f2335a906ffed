package kbs

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// trusteeFixture is a KBS that answers as Trustee's does (kbs/src/
// attestation/backend.rs, session.rs, error.rs, jwe/mod.rs): a UUID
// session cookie, a 32-byte base64 nonce, the runtime data hashed as
// Trustee hashes it (here with encoding/json's sorted map, not this
// package's encoder), the token, the resource as Trustee's JWE, and
// Trustee's problems. Its evidence is Trustee's "sample" TEE's:
// {"svn","report_data"}, report_data the runtime data hash in base64.
func trusteeFixture(t *testing.T) *httptest.Server {
	t.Helper()
	const session = "0123456789abcdef0123456789abcdef"
	nonce := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	var teeKey JWK
	problem := func(w http.ResponseWriter, status int, name, detail string) {
		w.WriteHeader(status)
		io.WriteString(w, `{"type":"https://github.com/confidential-containers/kbs/errors/`+name+`","detail":"`+detail+`"}`)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /kbs/v0/auth", func(w http.ResponseWriter, r *http.Request) {
		var req map[string]any
		json.NewDecoder(r.Body).Decode(&req)
		if req["version"] != "0.4.0" || req["tee"] != "sample" || req["extra-params"] != "" {
			problem(w, 401, "AttestationError", "Attestation error: RCAR handshake Auth failed")
			return
		}
		w.Header().Set("Set-Cookie", "kbs-session-id="+session+"; Expires=Wed, 02 Dec 2026 03:00:00 GMT")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"nonce":"`+nonce+`","extra-params":""}`)
	})
	mux.HandleFunc("POST /kbs/v0/attest", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("kbs-session-id"); err != nil || c.Value != session {
			problem(w, 401, "AttestationError", "Attestation error: cookie not found")
			return
		}
		var att struct {
			RuntimeData struct {
				Nonce     string         `json:"nonce"`
				TeePubKey map[string]any `json:"tee-pubkey"`
			} `json:"runtime-data"`
			TeeEvidence struct {
				Primary struct {
					SVN        string `json:"svn"`
					ReportData string `json:"report_data"`
				} `json:"primary_evidence"`
				Additional string `json:"additional_evidence"`
			} `json:"tee-evidence"`
		}
		if err := json.NewDecoder(r.Body).Decode(&att); err != nil || att.RuntimeData.Nonce != nonce {
			problem(w, 401, "AttestationError", "Attestation error: RCAR handshake Attest failed")
			return
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(map[string]any{"tee-pubkey": att.RuntimeData.TeePubKey, "nonce": att.RuntimeData.Nonce, "additional-evidence": att.TeeEvidence.Additional})
		want := sha512.Sum384(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		if att.TeeEvidence.Primary.ReportData != base64.StdEncoding.EncodeToString(want[:]) {
			problem(w, 401, "AttestationError", "Attestation error: Verifier evaluate failed: REPORT_DATA mismatch")
			return
		}
		k, _ := json.Marshal(att.RuntimeData.TeePubKey)
		json.Unmarshal(k, &teeKey)
		io.WriteString(w, `{"token":"eyJhbGciOiJSUzI1NiJ9.eyJ0ZWUtcHVia2V5Ijp7fX0.c2ln"}`)
	})
	mux.HandleFunc("GET /kbs/v0/resource/default/key/{tag}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer eyJhbGciOiJSUzI1NiJ9.eyJ0ZWUtcHVia2V5Ijp7fX0.c2ln" {
			problem(w, 401, "TokenNotFound", "Attestation Token not found")
			return
		}
		if r.PathValue("tag") != "1" {
			problem(w, 401, "PolicyDeny", "Access denied by policy")
			return
		}
		j, err := Encrypt(&teeKey, []byte("a secret from Trustee"))
		if err != nil {
			problem(w, 401, "JweError", "JWE failed")
			return
		}
		json.NewEncoder(w).Encode(j)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestClientAgainstTrusteeFixture: the client's auth, attest and resource
// against answers shaped as Trustee's, with no broker key pinned (a stock
// Trustee signs nothing; TLS stands for it): the runtime data hash the
// client's evidence binds is the one the fixture computes its own way,
// the JWE opens, and Trustee's problems come back as refusals with their
// type and status.
func TestClientAgainstTrusteeFixture(t *testing.T) {
	srv := trusteeFixture(t)
	c := &Client{URL: srv.URL}
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	sess, err := c.Auth(context.Background(), "sample", key)
	if err != nil {
		t.Fatal(err)
	}
	primary, _ := json.Marshal(map[string]string{"svn": "1", "report_data": base64.StdEncoding.EncodeToString(sess.ReportNonce())})
	if _, err := sess.Attest(context.Background(), primary); err != nil {
		t.Fatal(err)
	}
	v, err := sess.Resource(context.Background(), "default/key/1")
	if err != nil || string(v) != "a secret from Trustee" {
		t.Fatalf("%q %v", v, err)
	}
	_, err = sess.Resource(context.Background(), "default/key/2")
	var p *Problem
	if !errors.Is(err, ErrRefused) || !errors.As(err, &p) || p.Name() != ProblemPolicyDeny || p.Status != 401 {
		t.Errorf("a denied resource: %v", err)
	}
	// Evidence that does not bind the runtime data: Trustee's refusal.
	sess2, _ := c.Auth(context.Background(), "sample", key)
	bad, _ := json.Marshal(map[string]string{"svn": "1", "report_data": base64.StdEncoding.EncodeToString(make([]byte, 48))})
	if _, err := sess2.Attest(context.Background(), bad); !errors.As(err, &p) || p.Name() != ProblemAttestation || !strings.Contains(p.Detail, "REPORT_DATA") {
		t.Errorf("unbound evidence: %v", err)
	}
	// With a broker key pinned, Trustee's unsigned answer is refused.
	c.Key = make([]byte, 32)
	sess3, _ := c.Auth(context.Background(), "sample", key)
	good, _ := json.Marshal(map[string]string{"svn": "1", "report_data": base64.StdEncoding.EncodeToString(sess3.ReportNonce())})
	if _, err := sess3.Attest(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	if _, err := sess3.Resource(context.Background(), "default/key/1"); !errors.Is(err, ErrMessage) {
		t.Errorf("an unsigned answer under a pinned key: %v", err)
	}
}
