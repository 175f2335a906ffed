package broker

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tdxpb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

var (
	measurementA = [48]byte{0xa}
	measurementB = [48]byte{0xb}
	measurementC = [48]byte{0xc} // not in the policy
)

// testSimKey is the simulator key of the test's machine, which the test
// policies pin.
var testSimKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

// simPin is a policy line pinning testSimKey.
func simPin() string {
	return "sim_keys = [\"" + hex.EncodeToString(testSimKey.Public().(ed25519.PublicKey)) + "\"]\n"
}

func testPolicy(t testing.TB) *attest.Policy {
	t.Helper()
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(measurementA[:]) + "\", \"" + hex.EncodeToString(measurementB[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\n" + simPin()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// broker is a real broker over a bbolt file, served on loopback.
type testBroker struct {
	s      *Server
	srv    *httptest.Server
	client *Client
	sim    *sim.Backend
}

func newBroker(t testing.TB) *testBroker {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "broker.db"), testPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &testBroker{s: s, srv: srv, client: &Client{URL: srv.URL, Key: s.PublicKey()}, sim: sim.New(testSimKey)}
}

// evidence is a run's envelope for m, bound to nonce and a fresh runtime
// key, from the simulator.
func (b *testBroker) evidence(t testing.TB, m [48]byte, nonce []byte) (*tee.Envelope, *ecdh.PrivateKey) {
	t.Helper()
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	pub := key.PublicKey().Bytes()
	ev, err := b.sim.Attest(context.Background(), tee.ReportData(m, pub, nonce))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sim.Verify(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &tee.Envelope{Version: tee.EnvelopeVersion, Kind: sim.Kind, Insecure: true, Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: hex.EncodeToString(m[:]), Profile: "staging", RuntimeKey: pub, Nonce: nonce, Issued: c.Issued}, key
}

// release runs the whole protocol for m.
func (b *testBroker) release(t testing.TB, m [48]byte) ([]byte, error) {
	t.Helper()
	nonce, err := b.client.Challenge(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	env, key := b.evidence(t, m, nonce)
	secrets, err := b.client.Release(context.Background(), env, key, []string{SealingKey})
	if err != nil {
		return nil, err
	}
	return secrets[SealingKey], nil
}

// releaseTDX runs the whole protocol for m with a TDX quote from fake
// through the real backend.
func (b *testBroker) releaseTDX(t testing.TB, fake *tdxfake.Provider, m [48]byte) ([]byte, error) {
	t.Helper()
	nonce, err := b.client.Challenge(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	pub := key.PublicKey().Bytes()
	ev, err := tdx.NewBackend(fake).Attest(context.Background(), tee.ReportData(m, pub, nonce))
	if err != nil {
		t.Fatal(err)
	}
	env := &tee.Envelope{Version: tee.EnvelopeVersion, Kind: tdx.Kind, Evidence: ev.Raw, Measurement: hex.EncodeToString(m[:]),
		Profile: "staging", RuntimeKey: pub, Nonce: nonce, Issued: time.Now().UTC()}
	secrets, err := b.client.Release(context.Background(), env, key, []string{SealingKey})
	if err != nil {
		return nil, err
	}
	return secrets[SealingKey], nil
}

func TestReleaseSealingKey(t *testing.T) {
	b := newBroker(t)
	k1, err := b.release(t, measurementA)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := b.release(t, measurementA)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.release(t, measurementB)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 || !bytes.Equal(k1, k2) || bytes.Equal(k1, kb) {
		t.Errorf("sealing keys: same measurement equal %v, other measurement differs %v", bytes.Equal(k1, k2), !bytes.Equal(k1, kb))
	}
	// The database keeps the broker's keys: reopened, it signs with the
	// same key and releases the same sealing key.
	path := b.s.db.Path()
	pub := b.s.PublicKey()
	b.srv.Close()
	b.s.Close()
	s, err := Open(path, testPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.PublicKey().Equal(pub) {
		t.Error("the reopened broker has another signing key")
	}
	if _, err := Open(path, testPolicy(t)); !errors.Is(err, ErrDatabase) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second broker on one database: %v", err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	b2 := &testBroker{s: s, srv: srv, client: &Client{URL: srv.URL, Key: pub}, sim: b.sim}
	if k3, err := b2.release(t, measurementA); err != nil || !bytes.Equal(k3, k1) {
		t.Errorf("after reopening: %v, same key %v", err, bytes.Equal(k3, k1))
	}
}

// TestReleaseRefusals: every way evidence can fail is refused with its
// reason, nothing is released, and each decision is audited.
func TestReleaseRefusals(t *testing.T) {
	b := newBroker(t)
	ctx := context.Background()
	check := func(name string, err error, want error, reason string) {
		t.Helper()
		if !errors.Is(err, want) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: %v, want %v with %q", name, err, want, reason)
		}
	}

	// A nonce answers once.
	nonce, _ := b.client.Challenge(ctx)
	env, key := b.evidence(t, measurementA, nonce)
	if _, err := b.client.Release(ctx, env, key, []string{SealingKey}); err != nil {
		t.Fatal(err)
	}
	_, err := b.client.Release(ctx, env, key, []string{SealingKey})
	check("replayed evidence", err, ErrRefused, "used already")

	// A nonce the broker never issued.
	env, key = b.evidence(t, measurementA, []byte("a nonce of our own, 32 bytes...."))
	_, err = b.client.Release(ctx, env, key, []string{SealingKey})
	check("unissued nonce", err, ErrRefused, "not issued by this broker")

	// An expired nonce.
	nonce, _ = b.client.Challenge(ctx)
	env, key = b.evidence(t, measurementA, nonce)
	b.s.Now = func() time.Time { return time.Now().Add(NonceLifetime + time.Minute) }
	_, err = b.client.Release(ctx, env, key, []string{SealingKey})
	check("expired nonce", err, ErrRefused, "expired")
	b.s.Now = time.Now

	// A measurement the policy does not list.
	_, err = b.release(t, measurementC)
	check("unknown measurement", err, ErrRefused, "not a reference value")

	// Evidence bound to another runtime key than the one sent.
	nonce, _ = b.client.Challenge(ctx)
	env, _ = b.evidence(t, measurementA, nonce)
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	env.RuntimeKey = other.PublicKey().Bytes()
	_, err = b.client.Release(ctx, env, other, []string{SealingKey})
	check("swapped runtime key", err, ErrRefused, "report data")

	// A secret the broker does not hold.
	nonce, _ = b.client.Challenge(ctx)
	env, key = b.evidence(t, measurementA, nonce)
	_, err = b.client.Release(ctx, env, key, []string{"db-password"})
	check("unknown secret", err, ErrUnavailable, "releases resources by their path")

	// A broker other than the pinned one.
	nonce, _ = b.client.Challenge(ctx)
	env, key = b.evidence(t, measurementA, nonce)
	wrong := &Client{URL: b.srv.URL, Key: ed25519.PublicKey(make([]byte, 32))}
	_, err = wrong.Release(ctx, env, key, []string{SealingKey})
	check("unpinned broker", err, ErrProtocol, "not signed by the broker")

	records, err := b.s.Audit()
	if err != nil {
		t.Fatal(err)
	}
	statuses := map[string]int{}
	for _, r := range records {
		statuses[r.Status]++
		if r.Status != "affirming" && len(r.Released) != 0 {
			t.Errorf("released %v on %s", r.Released, r.Status)
		}
	}
	// 2 affirming (the first release, the unpinned broker's answer, which
	// the client refused), 5 refused; the unknown secret never reached a
	// decision.
	if statuses["affirming"] != 2 || statuses["contraindicated"] != 5 {
		t.Errorf("audit statuses %v", statuses)
	}
}

// tamper rewrites every answer's body on the way back, as a host in the
// middle could.
type tamper struct {
	rt     http.RoundTripper
	change func([]byte) []byte
}

func (tp tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := tp.rt.RoundTrip(r)
	if err != nil || r.URL.Path != ReleasePath {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(tp.change(body)))
	resp.ContentLength = -1
	return resp, nil
}

// TestHostInTheMiddle: a host that alters the broker's answer, or turns a
// refusal into an affirmation, is caught by the signature; one that hands
// the run a secret of its own cannot sign it.
func TestHostInTheMiddle(t *testing.T) {
	b := newBroker(t)
	for name, change := range map[string]func([]byte) []byte{
		"flipped secret byte": func(body []byte) []byte {
			i := bytes.Index(body, []byte(`"sealing-key":"`)) + len(`"sealing-key":"`) + 5
			body[i] ^= 1
			return body
		},
		"refusal turned into affirmation": func(body []byte) []byte {
			return bytes.Replace(body, []byte(`"contraindicated"`), []byte(`"affirming"`), 1)
		},
		"status edited": func(body []byte) []byte {
			return bytes.Replace(body, []byte(`"affirming"`), []byte(`"warning"`), 1)
		},
		"truncated": func(body []byte) []byte { return body[:len(body)/2] },
	} {
		t.Run(name, func(t *testing.T) {
			b.client.HTTP = &http.Client{Transport: tamper{rt: http.DefaultTransport, change: change}}
			defer func() { b.client.HTTP = nil }()
			m := measurementA
			if strings.Contains(name, "refusal") {
				m = measurementC
			}
			if k, err := b.release(t, m); !errors.Is(err, ErrProtocol) {
				t.Errorf("got key %x, %v; want ErrProtocol", k, err)
			}
		})
	}
}

func TestBrokerUnavailableAndBadRequests(t *testing.T) {
	b := newBroker(t)
	b.srv.Close()
	if _, err := b.client.Challenge(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a closed broker: %v", err)
	}
	b = newBroker(t)
	for name, body := range map[string]string{
		"not json":      "hello",
		"no evidence":   `{"secrets":["sealing-key"]}`,
		"no secrets":    `{"evidence":{"version":1},"secrets":[]}`,
		"bad envelope":  `{"evidence":{"version":1},"secrets":["sealing-key"]}`,
		"unknown field": `{"evidence":{},"secrets":["sealing-key"],"x":1}`,
		"long name":     `{"evidence":{"version":1},"secrets":["` + strings.Repeat("x", 200) + `"]}`,
	} {
		resp, err := http.Post(b.srv.URL+ReleasePath, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s", name, resp.Status)
		}
	}
	// Evidence of no known kind or profile reaches no decision and leaves
	// nothing in the audit trail, however long its fields.
	nonce, _ := b.client.Challenge(context.Background())
	for _, change := range []func(*tee.Envelope){
		func(e *tee.Envelope) { e.Kind = strings.Repeat("k", 100000) },
		func(e *tee.Envelope) { e.Profile = strings.Repeat("p", 100000) },
	} {
		env, key := b.evidence(t, measurementA, nonce)
		change(env)
		if _, err := b.client.Release(context.Background(), env, key, []string{SealingKey}); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "no known") {
			t.Errorf("unknown kind or profile: %v", err)
		}
	}
	if records, _ := b.s.Audit(); len(records) != 0 {
		t.Errorf("%d audit records for requests that reached no decision", len(records))
	}
	resp, err := http.Get(b.srv.URL + ReleasePath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET release: %s", resp.Status)
	}
}

// FuzzDecodeReleaseRequest: any bytes are a request or an ErrProtocol.
func FuzzDecodeReleaseRequest(f *testing.F) {
	f.Add([]byte(`{"evidence":{"version":1},"secrets":["sealing-key"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeReleaseRequest(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if len(req.Evidence) == 0 || len(req.Secrets) == 0 {
			t.Fatalf("accepted %+v", req)
		}
	})
}

// FuzzDecodeReleaseResponse: any bytes are refused unless signed.
func FuzzDecodeReleaseResponse(f *testing.F) {
	f.Add([]byte(`{"status":"affirming","reasons":[],"measurement":"","signature":""}`))
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := DecodeReleaseResponse(bytes.NewReader(data), key.Public().(ed25519.PublicKey), []byte("nonce")); err == nil {
			t.Fatal("accepted an answer nobody signed")
		} else if !errors.Is(err, ErrProtocol) {
			t.Fatalf("unclassified: %v", err)
		}
	})
}

// BenchmarkRelease is one run's whole exchange on loopback: challenge,
// simulator evidence, release, unwrap (the bbolt writes fsync).
func BenchmarkRelease(b *testing.B) {
	tb := newBroker(b)
	for i := 0; i < b.N; i++ {
		if _, err := tb.release(b, measurementA); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKeysKeepClassesApart: a policy that accepts the simulator, or a
// debuggable TEE, beside real TEEs must not let their evidence obtain the
// key a protected run of the same measurement gets: the host can make the
// one and read the other.
func TestKeysKeepClassesApart(t *testing.T) {
	b := newBroker(t)
	fake := tdxfake.New(t)
	b.s.Verify = attest.Options{TDXRoots: fake.Roots()}
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(measurementA[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\", \"tdx\"]\nallow_insecure = true\nallow_debug = true\n" + simPin()))
	if err != nil {
		t.Fatal(err)
	}
	b.s.SetPolicy(p)
	tdxKey := func(debug bool) []byte {
		fake.Body = nil
		if debug {
			fake.Body = func(body *tdxpb.TDQuoteBody) { body.TdAttributes[0] |= 1 }
		}
		key, err := b.releaseTDX(t, fake, measurementA)
		if err != nil {
			t.Fatalf("tdx (debug %v): %v", debug, err)
		}
		return key
	}
	hardware, debug := tdxKey(false), tdxKey(true)
	again := tdxKey(false)
	insecure, err := b.release(t, measurementA)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hardware, again) {
		t.Error("two protected runs of one measurement got different keys")
	}
	if bytes.Equal(hardware, insecure) || bytes.Equal(hardware, debug) || bytes.Equal(debug, insecure) {
		t.Error("a simulator or debug run got a protected run's key")
	}
}

// TestBrokerJudgesTDXCollateral: the broker fetches Intel's collateral for
// a TDX quote (from a PCS mirror on loopback) and judges the TCB with it;
// when it cannot have it, the TCB is not judged, which a policy requiring
// an up-to-date TCB refuses.
func TestBrokerJudgesTDXCollateral(t *testing.T) {
	b := newBroker(t)
	fake := tdxfake.New(t)
	b.s.Verify = attest.Options{TDXRoots: fake.Roots()}
	policy := func(extra string) *attest.Policy {
		p, err := attest.ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(measurementA[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\n" + extra))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	release := func() error {
		_, err := b.releaseTDX(t, fake, measurementA)
		return err
	}
	// Intel's collateral is signed under Intel's root, which the test-only
	// quote does not chain to: judged with it, the TCB cannot pass.
	mirror, requests := tdxfake.PCSMirror(t)
	b.s.TDXCollateral = (&tdx.CollateralSource{Base: mirror.URL, Client: mirror.Client()}).Fetch
	b.s.SetPolicy(policy(""))
	if err := release(); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "CRL") || requests.Load() == 0 {
		t.Errorf("TCB judged with collateral: %v (%d requests)", err, requests.Load())
	}
	// No collateral to be had: the verdict says the TCB was not judged.
	mirror.Close()
	b.s.TDXCollateral = (&tdx.CollateralSource{Base: mirror.URL}).Fetch
	if err := release(); err != nil {
		t.Errorf("no collateral, no requirement: %v", err)
	}
	records, _ := b.s.Audit()
	if last := records[len(records)-1]; !strings.Contains(strings.Join(last.Reasons, "; "), "TCB status not judged") {
		t.Errorf("the audit does not say the TCB was not judged: %+v", last)
	}
	b.s.SetPolicy(policy("tdx_require_tcb_up_to_date = true\n"))
	if err := release(); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "tdx_require_tcb_up_to_date") {
		t.Errorf("no collateral under tdx_require_tcb_up_to_date: %v", err)
	}
}

// TestBundleSealingKey: the measurements a policy's [bundles] lists for
// one bundle obtain one sealing key, that bundle's; a measurement in no
// bundle keeps its own, as before; a run of another bundle, or of one in
// measurements but left out of the bundle, never gets the bundle's key;
// the classes stay apart; and once the policy drops a measurement from
// the bundle it gets its own key again.
func TestBundleSealingKey(t *testing.T) {
	b := newBroker(t)
	own, err := b.release(t, measurementA)
	if err != nil {
		t.Fatal(err)
	}
	hexA, hexB, hexC := hex.EncodeToString(measurementA[:]), hex.EncodeToString(measurementB[:]), hex.EncodeToString(measurementC[:])
	policy := func(bundles string) *attest.Policy {
		p, err := attest.ParsePolicy([]byte("measurements = [\"" + hexA + "\", \"" + hexB + "\", \"" + hexC + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\n" + simPin() + "[bundles]\n" + bundles))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	b.s.SetPolicy(policy("notebook = [\"" + hexA + "\", \"" + hexB + "\"]\ndiary = [\"" + hexC + "\"]\n"))
	ka, err := b.release(t, measurementA)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := b.release(t, measurementB)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := b.release(t, measurementC)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ka, kb) {
		t.Error("two versions of one bundle got different keys")
	}
	if bytes.Equal(ka, kc) || bytes.Equal(ka, own) {
		t.Error("the bundle's key is another bundle's, or a measurement's own")
	}
	b.s.SetPolicy(policy("notebook = [\"" + hexB + "\"]\n"))
	if again, err := b.release(t, measurementA); err != nil || !bytes.Equal(again, own) || bytes.Equal(again, kb) {
		t.Errorf("a measurement out of the bundle: %v, its own key %v", err, bytes.Equal(again, own))
	}
	// The bundle's key of the insecure class is not a protected run's:
	// the derivation takes the class, as the measurement's does.
	m := [48]byte{0x77}
	hwKey, _ := b.s.sealingKey(policy("notebook = [\""+hexA+"\"]\n"), measurementA, "hardware")
	simKey, _ := b.s.sealingKey(policy("notebook = [\""+hexA+"\"]\n"), measurementA, "insecure")
	ownKey, _ := b.s.sealingKey(policy("notebook = [\""+hexA+"\"]\n"), m, "insecure")
	if bytes.Equal(hwKey, simKey) || bytes.Equal(simKey, ownKey) {
		t.Error("the bundle's keys of two classes, or a bundle's and a measurement's, are equal")
	}
}
