package broker

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/internal/kbsload"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// kbsClient is a KBS client of b pinning its key.
func (b *testBroker) kbsClient() *kbs.Client {
	return &kbs.Client{URL: b.srv.URL, Key: b.s.PublicKey()}
}

// kbsEnvelope is the simulator's envelope for m under the session: its
// nonce the session's report nonce, its runtime key the session's.
func (b *testBroker) kbsEnvelope(t testing.TB, sess *kbs.Session, key *ecdh.PrivateKey, m [48]byte) *tee.Envelope {
	t.Helper()
	pub, nonce := key.PublicKey().Bytes(), sess.ReportNonce()
	ev, err := b.sim.Attest(context.Background(), tee.ReportData(m, pub, nonce))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sim.Verify(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &tee.Envelope{Version: tee.EnvelopeVersion, Kind: sim.Kind, Insecure: true, Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: hex.EncodeToString(m[:]), Profile: "staging", RuntimeKey: pub, Nonce: nonce, Issued: c.Issued}
}

// kbsSession runs auth and attest for m, with alter applied to the
// envelope before it is sent.
func (b *testBroker) kbsSession(t testing.TB, m [48]byte, alter func(*tee.Envelope)) (*kbs.Session, error) {
	t.Helper()
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	sess, err := b.kbsClient().Auth(context.Background(), TeeSim, key)
	if err != nil {
		t.Fatal(err)
	}
	env := b.kbsEnvelope(t, sess, key, m)
	if alter != nil {
		alter(env)
	}
	primary, err := kbs.AmpoulePrimary(env, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sess.Attest(context.Background(), primary)
	return sess, err
}

// problemOf is the Trustee problem err carries.
func problemOf(t *testing.T, err error) *kbs.Problem {
	t.Helper()
	var p *kbs.Problem
	if !errors.Is(err, kbs.ErrRefused) || !errors.As(err, &p) {
		t.Fatalf("not a refusal with a problem: %v", err)
	}
	if !strings.HasPrefix(p.Type, kbs.ProblemPrefix) {
		t.Errorf("problem type %q", p.Type)
	}
	return p
}

// TestKBSHappyPath: auth, attest and the sealing key as a KBS resource,
// on loopback with real HTTP and bbolt: the token is an EAR the
// published JWKS verifies, naming the measurement; the key is the one
// the broker's own protocol releases for the measurement; the release is
// audited; the cookie of the attested session fetches it too.
func TestKBSHappyPath(t *testing.T) {
	b := newBroker(t)
	sess, err := b.kbsSession(t, measurementA, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(b.srv.URL + kbs.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kbs.ReadJWKS(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	claims, err := kbs.VerifyEAR(sess.Token(), keys, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if claims.Verdict != "affirming" || claims.Measurement != hex.EncodeToString(measurementA[:]) || claims.Profile != "staging" || claims.Backend != sim.Kind || claims.Class == "" {
		t.Errorf("claims %+v", claims)
	}
	key, err := sess.Resource(context.Background(), SealingKeyResource)
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := b.release(t, measurementA)
	if err != nil || !bytes.Equal(key, legacy) || len(key) != 32 {
		t.Fatalf("the KBS sealing key %x, the release's %x (%v)", key, legacy, err)
	}
	// The attested session's cookie is the token.
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+kbs.ResourcePath+SealingKeyResource, nil)
	req.AddCookie(&http.Cookie{Name: kbs.SessionCookie, Value: sess.Token()})
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Fatalf("with the cookie: %s %s", r2.Status, body)
	}
	records, err := b.s.Audit()
	if err != nil {
		t.Fatal(err)
	}
	// The KBS resource decisions; a /v1/release of the same key records
	// the evidence's verification reasons, which a resource decision,
	// taken on a token, does not.
	var released int
	for _, r := range records {
		if len(r.Released) == 1 && r.Released[0] == SealingKeyResource && r.Measurement == claims.Measurement && len(r.Reasons) == 0 {
			released++
		}
	}
	if released != 2 {
		t.Errorf("audit: %d releases of the resource in %+v", released, records)
	}
}

// TestKBSRefusals: each way to get a resource it should not, refused with
// Trustee's problem and status, and each decision in the audit trail.
func TestKBSRefusals(t *testing.T) {
	b := newBroker(t)
	hexA, hexB := hex.EncodeToString(measurementA[:]), hex.EncodeToString(measurementB[:])
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + hexA + "\", \"" + hexB + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\n" + simPin() +
		"[[grants]]\nresources = [\"default/tenant/api-key\"]\nmeasurements = [\"" + hexB + "\"]\ninsecure = true\n" +
		"[[grants]]\nresources = [\"default/tenant/a-key\"]\nmeasurements = [\"" + hexA + "\"]\ninsecure = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.s.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"default/tenant/api-key", "default/tenant/a-key"} {
		if err := b.s.PutResource(path, []byte("value of "+path)); err != nil {
			t.Fatal(err)
		}
	}
	good, err := b.kbsSession(t, measurementA, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := good.Resource(context.Background(), "default/tenant/a-key"); err != nil || string(v) != "value of default/tenant/a-key" {
		t.Fatalf("a granted resource: %q %v", v, err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk, _ := b.s.JWKS().Keys[0], 0
	claims, err := kbs.VerifyEAR(good.Token(), b.s.JWKS(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged, err := kbs.IssueEAR(otherKey, jwk.Kid, *claims, "a forger")
	if err != nil {
		t.Fatal(err)
	}
	expired := *claims
	expired.IssuedAt, expired.Expires = time.Now().Add(-time.Hour).Truncate(time.Second), time.Now().Add(-time.Minute).Truncate(time.Second)
	old, err := kbs.IssueEAR(b.s.earKey, jwk.Kid, expired, "the broker, an hour ago")
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, token string) error {
		req, _ := http.NewRequest(http.MethodGet, b.srv.URL+kbs.ResourcePath+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == 200 {
			return nil
		}
		p, err := kbs.DecodeProblem(resp.Body, resp.StatusCode)
		if err != nil {
			t.Fatalf("not a problem: %v", err)
		}
		return fmt.Errorf("%w: %w", kbs.ErrRefused, p)
	}
	before, _ := b.s.Audit()
	for _, tc := range []struct {
		name    string
		err     func() error
		problem string
		status  int
		audited string
	}{
		{"another measurement", func() error { _, err := b.kbsSession(t, measurementC, nil); return err }, kbs.ProblemAttestation, 401, "measurement"},
		{"altered envelope", func() error {
			_, err := b.kbsSession(t, measurementA, func(e *tee.Envelope) { e.Measurement = hexB })
			return err
		}, kbs.ProblemAttestation, 401, "report data"},
		{"envelope for another key", func() error {
			_, err := b.kbsSession(t, measurementA, func(e *tee.Envelope) {
				k, _ := ecdh.P256().GenerateKey(rand.Reader)
				e.RuntimeKey = k.PublicKey().Bytes()
			})
			return err
		}, kbs.ProblemAttestation, 401, "runtime key is not the tee-pubkey"},
		{"envelope not binding the runtime data", func() error {
			_, err := b.kbsSession(t, measurementA, func(e *tee.Envelope) { e.Nonce = bytes.Repeat([]byte{1}, 48) })
			return err
		}, kbs.ProblemAttestation, 401, "hash of the runtime data"},
		{"replayed nonce", func() error {
			key, _ := ecdh.P256().GenerateKey(rand.Reader)
			sess, err := b.kbsClient().Auth(context.Background(), TeeSim, key)
			if err != nil {
				t.Fatal(err)
			}
			primary, _ := kbs.AmpoulePrimary(b.kbsEnvelope(t, sess, key, measurementA), nil)
			if _, err := sess.Attest(context.Background(), primary); err != nil {
				t.Fatal(err)
			}
			_, err = sess.Attest(context.Background(), primary)
			return err
		}, kbs.ProblemAttestation, 401, reasonUsed},
		{"token for another resource", func() error { _, err := good.Resource(context.Background(), "default/tenant/api-key"); return err }, kbs.ProblemPolicyDeny, 401, "granted to no run of this measurement"},
		// A path the store does not hold is answered as one not granted:
		// the answer does not tell what the store holds.
		{"a resource that is not", func() error { _, err := good.Resource(context.Background(), "default/tenant/none"); return err }, kbs.ProblemPolicyDeny, 401, "granted to no run"},
		{"forged token", func() error { return get("default/tenant/a-key", forged) }, kbs.ProblemTokenVerifier, 401, "token was refused"},
		{"expired token", func() error { return get("default/tenant/a-key", old) }, kbs.ProblemTokenVerifier, 401, "token was refused"},
		{"no token", func() error { return get("default/tenant/a-key", "") }, kbs.ProblemTokenNotFound, 401, ""},
		{"a path not of three parts", func() error { return get("default/tenant", good.Token()) }, kbs.ProblemInvalidRequestPath, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problemOf(t, tc.err())
			if p.Name() != tc.problem || p.Status != tc.status {
				t.Errorf("%s %d, want %s %d: %s", p.Name(), p.Status, tc.problem, tc.status, p.Detail)
			}
			after, _ := b.s.Audit()
			if tc.audited == "" {
				return
			}
			if len(after) <= len(before) {
				t.Fatalf("no audit record")
			}
			last := after[len(after)-1]
			if last.Status != "contraindicated" || len(last.Released) != 0 || !strings.Contains(strings.Join(last.Reasons, "; "), tc.audited) {
				t.Errorf("audit record %+v, want a refusal for %q", last, tc.audited)
			}
			before = after
		})
	}
}

// TestKBSHostInTheMiddle: a resource answer is taken only with the
// broker's signature over the session's nonce: a JWE a host seals to the
// run's key itself, or the broker's own answer for another session, is
// refused by the client.
func TestKBSHostInTheMiddle(t *testing.T) {
	b := newBroker(t)
	var swap func(w http.ResponseWriter, r *http.Request) bool
	real := b.srv.Config.Handler
	b.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if swap == nil || !swap(w, r) {
			real.ServeHTTP(w, r)
		}
	})
	sess, err := b.kbsSession(t, measurementA, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := kbs.VerifyEAR(sess.Token(), b.s.JWKS(), time.Now())
	// The host's own key, sealed to the run's tee-pubkey.
	swap = func(w http.ResponseWriter, r *http.Request) bool {
		j, _ := kbs.Encrypt(&claims.TeePubKey, bytes.Repeat([]byte{0x66}, 32))
		json.NewEncoder(w).Encode(j)
		return true
	}
	if _, err := sess.Resource(context.Background(), SealingKeyResource); !errors.Is(err, kbs.ErrMessage) {
		t.Errorf("took the host's own resource: %v", err)
	}
	// Another session's genuine answer.
	swap = nil
	other, err := b.kbsSession(t, measurementA, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+kbs.ResourcePath+SealingKeyResource, nil)
	req.Header.Set("Authorization", "Bearer "+other.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	sig := resp.Header.Get(kbs.ResourceSignatureHeader)
	resp.Body.Close()
	swap = func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set(kbs.ResourceSignatureHeader, sig)
		w.Write(body)
		return true
	}
	if _, err := sess.Resource(context.Background(), SealingKeyResource); !errors.Is(err, kbs.ErrMessage) {
		t.Errorf("took another session's answer: %v", err)
	}
}

// TestKBSTrusteeFixtures: Trustee's own messages and evidence, decoded and
// answered as Trustee's KBS answers them: kbs-types' request of another
// protocol version is refused with the version mismatch; Trustee's TDX
// evidence (its test quote) and SEV-SNP evidence (its e2e fixture) are
// read and refused, since they bind no Ampoule measurement; every answer
// is an RFC 7807 problem of Trustee's types.
func TestKBSTrusteeFixtures(t *testing.T) {
	b := newBroker(t)
	post := func(path, body string, cookie *http.Cookie) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, b.srv.URL+path, strings.NewReader(body))
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, data
	}
	resp, data := post(kbs.AuthPath, `{"version":"0.0.0","tee":"sev","extra-params":""}`, nil)
	p, err := kbs.DecodeProblem(bytes.NewReader(data), resp.StatusCode)
	if err != nil || p.Status != 401 || p.Name() != kbs.ProblemAttestation || !strings.Contains(p.Detail, "Version Mismatch: expect =0.4.0 while the request is 0.0.0") {
		t.Errorf("another version: %+v %v", p, err)
	}
	quote, err := os.ReadFile("testdata/trustee/tdx_quote_4.dat")
	if err != nil {
		t.Fatal(err)
	}
	snpEvidence, err := os.ReadFile("testdata/trustee/snp-evidence.json")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	jwk, _ := kbs.JWKFromECDH(key.PublicKey())
	for _, tc := range []struct {
		tee, primary string
	}{
		{TeeTDX, `{"cc_eventlog":null,"quote":"` + base64.StdEncoding.EncodeToString(quote) + `","aa_eventlog":null}`},
		{TeeSNP, string(snpEvidence)},
	} {
		resp, data := post(kbs.AuthPath, `{"version":"0.4.0","tee":"`+tc.tee+`","extra-params":""}`, nil)
		var cookie *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == kbs.SessionCookie {
				cookie = c
			}
		}
		ch, err := kbs.DecodeChallenge(bytes.NewReader(data))
		if resp.StatusCode != 200 || err != nil || cookie == nil {
			t.Fatalf("%s auth: %s %s", tc.tee, resp.Status, data)
		}
		if n, err := base64.StdEncoding.DecodeString(ch.Nonce); err != nil || len(n) < 32 || string(ch.ExtraParams) != `""` {
			t.Errorf("challenge %+v", ch)
		}
		pk, _ := json.Marshal(jwk)
		att := `{"runtime-data":{"nonce":"` + ch.Nonce + `","tee-pubkey":` + string(pk) + `},"tee-evidence":{"primary_evidence":` + tc.primary + `,"additional_evidence":""}}`
		resp, data = post(kbs.AttestPath, att, cookie)
		p, err := kbs.DecodeProblem(bytes.NewReader(data), resp.StatusCode)
		if err != nil || p.Status != 401 || p.Name() != kbs.ProblemAttestation || !strings.Contains(p.Detail, "binds no Ampoule measurement") {
			t.Errorf("%s evidence: %+v %v", tc.tee, p, err)
		}
		// Without the session's cookie, Trustee's answer.
		resp, data = post(kbs.AttestPath, att, nil)
		if p, err := kbs.DecodeProblem(bytes.NewReader(data), resp.StatusCode); err != nil || p.Status != 401 || !strings.Contains(p.Detail, "cookie not found") {
			t.Errorf("no cookie: %+v %v", p, err)
		}
	}
}

// FuzzAmpouleEvidence: no primary evidence makes the reading of an
// Ampoule run's (or Trustee's) evidence panic; what reads is an envelope
// the envelope's decoder accepts.
func FuzzAmpouleEvidence(f *testing.F) {
	f.Add(TeeSim, []byte(`{"ampoule-envelope":{"version":1},"ampoule-bundle":{"name":"n","version":"1"}}`))
	f.Add(TeeTDX, []byte(`{"cc_eventlog":null,"quote":"AAAA","aa_eventlog":null}`))
	f.Add(TeeSim, []byte(`{"ampoule-envelope":null}`))
	f.Add(TeeSim, []byte(`{"ampoule-envelope":{},"quote":"AAAA"}`))
	f.Add(TeeSNP, []byte(`{"attestation_report":{"version":3},"cert_chain":[{"cert_type":"VCEK","data":[48,130]}]}`))
	f.Fuzz(func(t *testing.T, teeName string, data []byte) {
		now := time.Now()
		env, bundle, err := ampouleEvidence(teeName, data, now)
		// It decides as the reading it replaced (a probe of the members,
		// then the strict reading).
		env0, bundle0, err0 := ampouleEvidenceProbed(teeName, data, now)
		if (err == nil) != (err0 == nil) || !reflect.DeepEqual(env, env0) || !reflect.DeepEqual(bundle, bundle0) {
			t.Fatalf("read once: %v, %v; probed first: %v, %v", env, err, env0, err0)
		}
		if err != nil {
			return
		}
		raw, _ := json.Marshal(env)
		if _, err := tee.DecodeEnvelope(raw); err != nil {
			t.Fatalf("read an envelope its decoder refuses: %v", err)
		}
	})
}

// BenchmarkKBSCycle is one run's whole KBS exchange on loopback: auth,
// simulator evidence bound to the session, attest (an EAR signed), the
// sealing key as a JWE and its opening (two bbolt transactions, each
// fsynced).
func BenchmarkKBSCycle(b *testing.B) {
	tb := newBroker(b)
	for i := 0; i < b.N; i++ {
		sess, err := tb.kbsSession(b, measurementA, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sess.Resource(context.Background(), SealingKeyResource); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKBSLoad runs whole KBS exchanges (kbsload's cycle: auth,
// simulator evidence, attest, the sealing key) from 16 clients against
// one broker on loopback, b.N cycles between them, and reports cycles/s,
// the p50 and p99 of a cycle and the process's CPU time per cycle
// (broker and clients); every cycle must succeed. The broker issue's load
// target is judged with bench/cmd/kbsload, which runs for a duration.
func BenchmarkKBSLoad(b *testing.B) {
	tb := newBroker(b)
	b.ResetTimer()
	res, err := kbsload.Run(context.Background(), kbsload.Config{URL: tb.srv.URL, Key: tb.s.PublicKey(), Sim: tb.sim,
		Measurement: measurementA, Profile: "staging", Resource: SealingKeyResource, Clients: 16, Cycles: b.N})
	if err != nil {
		b.Fatal(err)
	}
	if res.Errors > 0 {
		b.Fatalf("%d of %d cycles failed, the first: %v", res.Errors, b.N, res.FirstError)
	}
	b.ReportMetric(res.PerSecond(), "cycles/s")
	b.ReportMetric(float64(res.Quantile(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(res.Quantile(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(res.CPUPerCycle().Microseconds()), "cpu-µs/cycle")
}

// TestKBSConcurrentReplay: one session's attestation sent many times at
// once (their decisions batched into shared transactions) gets exactly
// one token; every other is refused as a used nonce, and each decision
// is audited.
func TestKBSConcurrentReplay(t *testing.T) {
	b := newBroker(t)
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	sess, err := b.kbsClient().Auth(context.Background(), TeeSim, key)
	if err != nil {
		t.Fatal(err)
	}
	primary, _ := kbs.AmpoulePrimary(b.kbsEnvelope(t, sess, key, measurementA), nil)
	before, _ := b.s.Audit()
	const n = 16
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := *sess
			_, err := s.Attest(context.Background(), primary)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		} else if p := problemOf(t, err); !strings.Contains(p.Detail, reasonUsed) {
			t.Errorf("refused for another reason: %s", p.Detail)
		}
	}
	if ok != 1 {
		t.Errorf("%d tokens for one nonce", ok)
	}
	after, _ := b.s.Audit()
	if len(after)-len(before) != n {
		t.Errorf("%d decisions audited, want %d", len(after)-len(before), n)
	}
}

// TestKBSTokensAuditedOneByOne: an issued token is a release, recorded
// on its own whatever the refusals' audit budget: with a budget of one
// refusal, five attestations leave five records naming the token.
func TestKBSTokensAuditedOneByOne(t *testing.T) {
	b := newBroker(t)
	b.s.Budget = AuditBudget{Burst: 1, PerSecond: 0, MaxBytes: 1 << 20, Retention: time.Hour}
	for range 5 {
		if _, err := b.kbsSession(t, measurementA, nil); err != nil {
			t.Fatal(err)
		}
	}
	records, err := b.s.Audit()
	if err != nil {
		t.Fatal(err)
	}
	tokens := 0
	for _, r := range records {
		if r.Aggregate == nil && slices.Equal(r.Released, []string{TokenAsked}) && r.Status == string(attest.Affirming) && r.Measurement == hex.EncodeToString(measurementA[:]) {
			tokens++
		}
	}
	if tokens != 5 {
		t.Errorf("%d token records of 5 in %+v", tokens, records)
	}
}

// ampouleEvidenceProbed is ampouleEvidence as it was before it read an
// Ampoule run's evidence once: the members probed first, then read
// strictly. FuzzAmpouleEvidence holds the two to the same decisions.
func ampouleEvidenceProbed(teeName string, primary json.RawMessage, now time.Time) (*tee.Envelope, *Bundle, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(primary, &probe); err != nil {
		return nil, nil, fmt.Errorf("the primary evidence is not a JSON object")
	}
	if _, ok := probe["ampoule-envelope"]; !ok {
		switch teeName {
		case TeeTDX:
			var e kbs.TDXEvidence
			if err := json.Unmarshal(primary, &e); err != nil || e.Quote == "" {
				return nil, nil, fmt.Errorf("the primary evidence is neither an Ampoule envelope nor Trustee's TDX evidence")
			}
			quote, err := base64.StdEncoding.DecodeString(e.Quote)
			if err != nil {
				return nil, nil, fmt.Errorf("the TDX evidence's quote is not base64")
			}
			if _, err := tdx.Verify(quote, now); err != nil {
				return nil, nil, fmt.Errorf("the TDX evidence's quote does not verify: %v", err)
			}
		case TeeSNP:
			var e kbs.SNPEvidence
			if err := json.Unmarshal(primary, &e); err != nil || len(e.AttestationReport) == 0 {
				return nil, nil, fmt.Errorf("the primary evidence is neither an Ampoule envelope nor Trustee's SNP evidence")
			}
			raw, err := kbs.SNPReportFromTrustee(e.AttestationReport)
			if err != nil {
				return nil, nil, err
			}
			if _, err := snp.ReportDebug(raw); err != nil {
				return nil, nil, fmt.Errorf("the SNP evidence's report does not read: %v", err)
			}
		default:
			return nil, nil, fmt.Errorf("the primary evidence is not an Ampoule envelope")
		}
		return nil, nil, fmt.Errorf("the %s evidence of Trustee's shape binds no Ampoule measurement: an Ampoule run sends its evidence envelope (ampoule-envelope)", teeName)
	}
	var ev kbs.AmpouleEvidence
	dec := json.NewDecoder(bytes.NewReader(primary))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return nil, nil, fmt.Errorf("the Ampoule evidence: %v", err)
	}
	env, err := tee.DecodeEnvelope(ev.Envelope)
	if err != nil {
		return nil, nil, err
	}
	var bundle *Bundle
	if len(ev.Bundle) > 0 {
		bundle = &Bundle{}
		dec := json.NewDecoder(bytes.NewReader(ev.Bundle))
		dec.DisallowUnknownFields()
		if err := dec.Decode(bundle); err != nil {
			return nil, nil, fmt.Errorf("the Ampoule bundle: %v", err)
		}
	}
	return env, bundle, nil
}
