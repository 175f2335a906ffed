package tdxfake

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	tdxtest "github.com/google/go-tdx-guest/testing"
)

// PCSMirror serves, on loopback, the answers Intel's PCS gave for the real
// quote go-tdx-guest ships (TCB info, QE identity, CRLs, with their
// issuer-chain headers), at Intel's paths, and counts the requests it
// answers. It closes with the test.
func PCSMirror(t testing.TB) (*httptest.Server, *atomic.Int64) {
	var requests atomic.Int64
	byPath := map[string]tdxtest.HTTPResponse{}
	for url, r := range tdxtest.TestGetter.Responses {
		rest := strings.TrimPrefix(url, "https://")
		byPath[rest[strings.IndexByte(rest, '/'):]] = r
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		resp, ok := byPath[r.URL.RequestURI()]
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.Write(resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}
