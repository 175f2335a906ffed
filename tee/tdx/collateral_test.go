package tdx

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	tdxtest "github.com/google/go-tdx-guest/testing"
	"github.com/google/go-tdx-guest/testing/testdata"

	"github.com/ampoule-run/ampoule/internal/tdxfake"
)

// realCollateral is what Intel's PCS answered for the real quote, as
// go-tdx-guest ships it (bodies and issuer-chain headers).
func realCollateral() *Collateral {
	c := &Collateral{Version: CollateralVersion, Responses: map[string]Response{}}
	for url, r := range tdxtest.TestGetter.Responses {
		c.Responses[url] = Response{Header: r.Header, Body: r.Body}
	}
	return c
}

// TestCollateralJudgesTCB: with Intel's real collateral the real quote's
// TCB is judged: the collateral's signatures, chains and CRLs hold at the
// pinned time, and the quote is refused because its TEE TCB SVN matches no
// TCB level of that TCB info (the library's own test says the same).
// Without collateral the same quote verifies, its TCB unjudged.
func TestCollateralJudgesTCB(t *testing.T) {
	c, err := VerifyWith(testdata.RawQuote, Options{Now: at})
	if err != nil || c.TCBUpToDate {
		t.Fatalf("without collateral: %v, up to date %v", err, c.TCBUpToDate)
	}
	_, err = VerifyWith(testdata.RawQuote, Options{Now: at, Collateral: realCollateral()})
	if !errors.Is(err, ErrQuote) || !strings.Contains(err.Error(), "no matching TCB level") {
		t.Fatalf("real collateral: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*Collateral)
		at     time.Time
		want   string
	}{
		"expired":          {func(*Collateral) {}, time.Date(2053, 7, 1, 0, 0, 0, 0, time.UTC), "expired"},
		"missing TCB info": {func(c *Collateral) { delete(c.Responses, tcbInfoURL(c)) }, at, "no answer"},
		"altered TCB info": {func(c *Collateral) {
			r := c.Responses[tcbInfoURL(c)]
			r.Body = bytes.Replace(r.Body, []byte(`"tcbStatus":"UpToDate"`), []byte(`"tcbStatus":"Revoked"`), 1)
			c.Responses[tcbInfoURL(c)] = r
		}, at, "tcbInfo response verification failed"},
		"no issuer chain": {func(c *Collateral) { r := c.Responses[tcbInfoURL(c)]; r.Header = nil; c.Responses[tcbInfoURL(c)] = r }, at, "Issuer-Chain"},
		"missing root CRL": {func(c *Collateral) {
			delete(c.Responses, "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der")
		}, at, "no answer"},
	} {
		t.Run(name, func(t *testing.T) {
			coll := realCollateral()
			tc.change(coll)
			if _, err := VerifyWith(testdata.RawQuote, Options{Now: tc.at, Collateral: coll}); !errors.Is(err, ErrQuote) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func tcbInfoURL(c *Collateral) string {
	for url := range c.Responses {
		if strings.Contains(url, "/tcb?") {
			return url
		}
	}
	return ""
}

// TestFetchCollateral fetches from a PCS mirror on loopback that serves
// Intel's real answers: the document holds all four, survives encoding,
// and judges the quote as the library's own answers do.
func TestFetchCollateral(t *testing.T) {
	srv, _ := tdxfake.PCSMirror(t)
	c, err := FetchCollateral(testdata.RawQuote, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Responses) != 4 {
		t.Fatalf("%d answers", len(c.Responses))
	}
	data, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeCollateral(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyWith(testdata.RawQuote, Options{Now: at, Collateral: back}); err == nil || !strings.Contains(err.Error(), "no matching TCB level") {
		t.Errorf("fetched collateral: %v", err)
	}
	// A mirror that does not answer.
	srv.Close()
	if _, err := FetchCollateral(testdata.RawQuote, srv.URL, nil); err == nil {
		t.Error("fetched from a closed server")
	}
}

func TestDecodeCollateralIsStrict(t *testing.T) {
	for name, bad := range map[string]string{
		"empty":         ``,
		"version":       `{"version":2,"responses":{"x":{"body":""}}}`,
		"no responses":  `{"version":1,"responses":{}}`,
		"unknown field": `{"version":1,"responses":{"x":{"body":""}},"extra":1}`,
		"two documents": `{"version":1,"responses":{"x":{"body":""}}}{}`,
	} {
		if _, err := DecodeCollateral([]byte(bad)); !errors.Is(err, ErrCollateral) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeCollateral: any bytes decode to a usable document or fail
// with ErrCollateral.
func FuzzDecodeCollateral(f *testing.F) {
	if data, err := realCollateral().Encode(); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCollateral(data)
		if err != nil {
			if !errors.Is(err, ErrCollateral) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if c.Version != CollateralVersion || len(c.Responses) == 0 {
			t.Fatalf("accepted %+v", c)
		}
	})
}

// TestCollateralSourceCaches: a relying party asks the PCS once per answer
// within the TTL, and again after it.
func TestCollateralSourceCaches(t *testing.T) {
	srv, requests := tdxfake.PCSMirror(t)
	src := &CollateralSource{Base: srv.URL, Client: srv.Client(), TTL: time.Hour}
	for i := 0; i < 3; i++ {
		c, err := src.Fetch(testdata.RawQuote)
		if err != nil || len(c.Responses) != 4 {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	if n := requests.Load(); n != 4 {
		t.Errorf("%d requests for three fetches, want 4", n)
	}
	src.TTL = time.Nanosecond
	if _, err := src.Fetch(testdata.RawQuote); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 8 {
		t.Errorf("%d requests after the TTL, want 8", n)
	}
}
