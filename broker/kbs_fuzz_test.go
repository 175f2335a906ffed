package broker

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/ampoule-run/ampoule/broker/kbs"
)

// FuzzKBSEndpoints sends the KBS endpoints whatever a client may: any
// body to auth and attest, any session cookie, any Authorization header,
// any resource path. The broker answers each with a challenge, a token or
// a resource that decodes as such, or with a problem of Trustee's shape and
// status (401, or 404 for a path), or, for a resource path that is not
// clean, with the mux's redirect to its clean form; it never panics or
// hangs.
func FuzzKBSEndpoints(f *testing.F) {
	f.Add(uint8(0), "", "", "", []byte(`{"version":"0.4.0","tee":"ampoule-sim","extra-params":""}`))
	f.Add(uint8(0), "", "", "", []byte(`{"version":"0.3.0","tee":"snp","extra-params":""}`))
	f.Add(uint8(1), "", "ampoule-sim.AAAA", "", []byte(`{"runtime-data":{"nonce":"AAAA","tee-pubkey":{"kty":"EC","crv":"P-256","alg":"ECDH-ES+A256KW","x":"AA","y":"AA"}},"tee-evidence":{"primary_evidence":{},"additional_evidence":""}}`))
	f.Add(uint8(1), "", "snp.%%%", "", []byte(`{}`))
	f.Add(uint8(2), "default/tenant/api-key", "", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.AAAA", []byte(nil))
	f.Add(uint8(2), "ampoule/sealing/key", "eyJ.e30.", "", []byte(nil))
	f.Add(uint8(2), "a/b", "", "Basic x", []byte(nil))
	f.Add(uint8(2), "a/b/c/d/../e", "", "Bearer", []byte(nil))
	b := newBroker(f)
	h := b.s.Handler()
	f.Fuzz(func(t *testing.T, which uint8, path, cookie, auth string, body []byte) {
		method, target := http.MethodPost, kbs.AuthPath
		switch which % 3 {
		case 1:
			target = kbs.AttestPath
		case 2:
			method, target = http.MethodGet, kbs.ResourcePath+path
		}
		req := &http.Request{Method: method, URL: &url.URL{Path: target}, Header: http.Header{}, Body: http.NoBody, Host: "127.0.0.1", RemoteAddr: "127.0.0.1:1"}
		if len(body) > 0 {
			req.Body = httpBody(body)
			req.ContentLength = int64(len(body))
		}
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: kbs.SessionCookie, Value: cookie})
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusOK && which%3 == 0:
			if _, err := kbs.DecodeChallenge(rec.Body); err != nil {
				t.Fatalf("auth answered 200 with no challenge: %v", err)
			}
		case rec.Code == http.StatusOK && which%3 == 1:
			if _, err := kbs.DecodeTokenResponse(rec.Body); err != nil {
				t.Fatalf("attest answered 200 with no token: %v", err)
			}
		case rec.Code == http.StatusOK:
			if _, err := kbs.DecodeJWE(rec.Body.Bytes()); err != nil {
				t.Fatalf("resource answered 200 with no JWE: %v", err)
			}
		case rec.Code == http.StatusUnauthorized || rec.Code == http.StatusNotFound:
			p, err := kbs.DecodeProblem(bytes.NewReader(rec.Body.Bytes()), rec.Code)
			if err != nil {
				t.Fatalf("%d without a problem: %v: %q", rec.Code, err, rec.Body.Bytes())
			}
			if (rec.Code == http.StatusNotFound) != (p.Name() == kbs.ProblemInvalidRequestPath || p.Name() == "PluginNotFound") {
				t.Fatalf("%s answered %d", p.Name(), rec.Code)
			}
		case (rec.Code == http.StatusTemporaryRedirect || rec.Code == http.StatusMovedPermanently) && which%3 == 2:
			// net/http's mux sends a path with dot segments or doubled
			// slashes to its cleaned form, which is judged there as any.
			if loc := rec.Header().Get("Location"); len(loc) < len(kbs.ResourcePath) || loc[:len(kbs.ResourcePath)] != kbs.ResourcePath {
				t.Fatalf("redirected out of the resources to %q", loc)
			}
		default:
			t.Fatalf("%s %s answered %d: %q", method, target, rec.Code, rec.Body.Bytes())
		}
	})
}

type bodyReader struct{ *bytes.Reader }

func (bodyReader) Close() error { return nil }

func httpBody(b []byte) bodyReader { return bodyReader{bytes.NewReader(b)} }
