package broker

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func dbSize(t *testing.T, s *Server) int64 {
	t.Helper()
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestChallengeFloodDoesNotStopARelease: challenges store nothing, so a
// flood of them (twice what once filled the broker's nonce table) neither
// grows the database nor keeps a real run from its release, and the
// flood's nonces still answer once each.
func TestChallengeFloodDoesNotStopARelease(t *testing.T) {
	b := newBroker(t)
	before := dbSize(t, b.s)
	const n = 20000
	var last []byte
	for i := 0; i < n; i++ {
		w := httptest.NewRecorder()
		b.s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, ChallengePath, strings.NewReader("{}")))
		if w.Code != http.StatusOK {
			t.Fatalf("challenge %d: %d %s", i, w.Code, w.Body)
		}
		if i == n-1 {
			var ch Challenge
			if err := json.Unmarshal(w.Body.Bytes(), &ch); err != nil {
				t.Fatal(err)
			}
			last = ch.Nonce
		}
	}
	if k, err := b.release(t, measurementA); err != nil || len(k) != 32 {
		t.Fatalf("a run's release after %d challenges: %v", n, err)
	}
	env, key := b.evidence(t, measurementA, last)
	if _, err := b.client.Release(context.Background(), env, key, []string{SealingKey}); err != nil {
		t.Errorf("the flood's last nonce: %v", err)
	}
	if after := dbSize(t, b.s); after != before {
		t.Errorf("%d challenges grew the database from %d to %d bytes", n, before, after)
	}
}

// TestNonceIsStatelessAndSingleUse: a nonce carries its own proof and
// expiry: one altered, forged under another broker's key, expired, or
// claiming to live longer than a nonce does is refused, and a used one
// (kept until it expires, then forgotten) answers no second release.
func TestNonceIsStatelessAndSingleUse(t *testing.T) {
	b := newBroker(t)
	now := time.Now()
	nonce := b.s.newNonce(now.Add(NonceLifetime))
	if why := b.s.checkNonce(nonce, now); why != "" {
		t.Fatalf("a fresh nonce: %s", why)
	}
	for i := range nonce {
		flipped := bytes.Clone(nonce)
		flipped[i] ^= 1
		if b.s.checkNonce(flipped, now) == "" {
			t.Fatalf("byte %d flipped: accepted", i)
		}
	}
	other := newBroker(t)
	for name, tc := range map[string]struct {
		nonce []byte
		at    time.Time
		want  string
	}{
		"another broker's":  {other.s.newNonce(now.Add(NonceLifetime)), now, "not issued"},
		"short":             {nonce[:nonceSize-1], now, "not issued"},
		"long":              {append(bytes.Clone(nonce), 0), now, "not issued"},
		"expired":           {nonce, now.Add(NonceLifetime + time.Second), "expired"},
		"lives too long":    {b.s.newNonce(now.Add(time.Hour)), now, "longer than a nonce lives"},
		"empty":             {nil, now, "not issued"},
		"at its expiry, ok": {nonce, now.Add(NonceLifetime), ""},
	} {
		if why := b.s.checkNonce(tc.nonce, tc.at); (tc.want == "") != (why == "") || !strings.Contains(why, tc.want) {
			t.Errorf("%s: %q, want %q", name, why, tc.want)
		}
	}
	// Used nonces are kept until they expire, and then pruned.
	used := func() (n int) {
		b.s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketUsed).Stats().KeyN; return nil })
		return n
	}
	for range 3 {
		if _, err := b.release(t, measurementA); err != nil {
			t.Fatal(err)
		}
	}
	if n := used(); n != 3 {
		t.Fatalf("%d used nonces kept, want 3", n)
	}
	b.s.Now = func() time.Time { return time.Now().Add(NonceLifetime + time.Second) }
	if _, err := b.release(t, measurementA); err != nil {
		t.Fatal(err)
	}
	if n := used(); n != 1 {
		t.Errorf("%d used nonces kept after the first three expired, want 1", n)
	}
}

// TestReleaseFloodBoundsTheDatabase: 4,000 release requests a stranger
// can send (2,000 replays of a run's request, 2,000 with nonces of its
// own) grow the database by less than 512 KiB (by 4 MiB when each was
// stored); each is counted in the audit trail, and the
// release among them is kept as it was.
func TestReleaseFloodBoundsTheDatabase(t *testing.T) {
	b := newBroker(t)
	nonce, err := b.client.Challenge(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	env, key := b.evidence(t, measurementA, nonce)
	if _, err := b.client.Release(context.Background(), env, key, []string{SealingKey}); err != nil {
		t.Fatal(err)
	}
	replay, _ := json.Marshal(ReleaseRequest{Evidence: mustJSON(t, env), Secrets: []string{SealingKey}})
	forged, _ := b.evidence(t, measurementA, bytes.Repeat([]byte{1}, nonceSize))
	invalid, _ := json.Marshal(ReleaseRequest{Evidence: mustJSON(t, forged), Secrets: []string{SealingKey}})
	before, start := dbSize(t, b.s), time.Now()
	const n = 4000
	for i := 0; i < n; i++ {
		body := replay
		if i%2 == 1 {
			body = invalid
		}
		w := httptest.NewRecorder()
		b.s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, ReleasePath, bytes.NewReader(body)))
		if w.Code != http.StatusForbidden {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
	}
	const bound = 512 << 10
	after, elapsed := dbSize(t, b.s), time.Since(start)
	t.Logf("database: %d bytes before, %d after %d refused requests", before, after, n)
	if after-before >= bound {
		t.Errorf("%d refused requests grew the database by %d bytes, more than %d", n, after-before, bound)
	}
	records, err := b.s.Audit()
	if err != nil {
		t.Fatal(err)
	}
	decisions, releases, single := 0, 0, 0
	for _, r := range records {
		switch {
		case r.Aggregate != nil:
			decisions += r.Aggregate.Count
		case len(r.Released) > 0:
			releases++
			decisions++
		default:
			single++
			decisions++
		}
	}
	if decisions != n+1 || releases != 1 || float64(single) > DefaultBudget.Burst+elapsed.Seconds()*DefaultBudget.PerSecond+1 {
		t.Errorf("audit: %d decisions (want %d), %d releases, %d refusals one by one", decisions, n+1, releases, single)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAuditBudget: refused records beyond the size budget rotate out
// oldest first, and those beyond the retention go; every release stays.
func TestAuditBudget(t *testing.T) {
	b := newBroker(t)
	b.s.Budget = AuditBudget{Burst: 1000, PerSecond: 1000, MaxBytes: 8 << 10, Retention: time.Hour}
	start := time.Now()
	clock := start
	b.s.Now = func() time.Time { return clock }
	refuse := func(n int) {
		for range n {
			if _, err := b.release(t, measurementC); !errors.Is(err, ErrRefused) {
				t.Fatalf("unknown measurement: %v", err)
			}
		}
	}
	refuse(5)
	if _, err := b.release(t, measurementA); err != nil {
		t.Fatal(err)
	}
	refuse(200)
	records, _ := b.s.Audit()
	size, releases := 0, 0
	for _, r := range records {
		if len(r.Released) > 0 {
			releases++
			continue
		}
		size += len(mustJSON(t, r))
	}
	if releases != 1 || size > b.s.Budget.MaxBytes || len(records) >= 200 || len(records) < 5 {
		t.Errorf("after rotation: %d records, %d releases, %d bytes of refusals (budget %d)", len(records), releases, size, b.s.Budget.MaxBytes)
	}
	// The five refusals before the release were the oldest: gone first.
	if len(records[0].Released) != 1 {
		t.Errorf("the oldest refusals were kept: %+v", records[0])
	}
	// Past the retention, the old refusals go with the next decision.
	clock = start.Add(2 * time.Hour)
	refuse(1)
	records, _ = b.s.Audit()
	if len(records) != 2 || len(records[0].Released) != 1 || len(records[1].Released) != 0 {
		t.Errorf("after the retention: %+v", records)
	}
}

// TestAuditRateAggregates: refused decisions beyond the rate are counted
// in one record per minute, by reason and remote, not stored one by one.
func TestAuditRateAggregates(t *testing.T) {
	b := newBroker(t)
	b.s.Budget.Burst, b.s.Budget.PerSecond = 2, 0.001
	for range 7 {
		if _, err := b.release(t, measurementC); !errors.Is(err, ErrRefused) {
			t.Fatal(err)
		}
	}
	records, _ := b.s.Audit()
	if len(records) != 3 || records[0].Aggregate != nil || records[1].Aggregate != nil || records[2].Aggregate == nil {
		t.Fatalf("records: %+v", records)
	}
	a := records[2].Aggregate
	if a.Count != 5 || a.Statuses["contraindicated"] != 5 || a.Remotes["127.0.0.1"] != 5 || a.Measurements[hex.EncodeToString(measurementC[:])] != 5 {
		t.Errorf("aggregate: %+v", a)
	}
	found := false
	for r, n := range a.Reasons {
		found = found || (strings.Contains(r, "not a reference value") && n == 5)
	}
	if !found {
		t.Errorf("aggregate reasons: %v", a.Reasons)
	}
}

// failingDB reopens s's database on a read-only descriptor, so that every
// write the broker makes fails when it commits, as on a full or failing
// disk.
func failingDB(t *testing.T, s *Server) {
	t.Helper()
	path := s.db.Path()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, OpenFile: func(name string, _ int, _ os.FileMode) (*os.File, error) {
		return os.OpenFile(name, os.O_RDONLY, 0)
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.db = db
}

// TestFailedAuditReleasesNothing: a decision the broker cannot record
// releases nothing: the answer is a 500 without secrets, and the client
// says the broker is unavailable. Challenges still work: they write
// nothing.
func TestFailedAuditReleasesNothing(t *testing.T) {
	b := newBroker(t)
	failingDB(t, b.s)
	nonce, err := b.client.Challenge(context.Background())
	if err != nil {
		t.Fatalf("a challenge with the database failing: %v", err)
	}
	env, _ := b.evidence(t, measurementA, nonce)
	body := mustJSON(t, ReleaseRequest{Evidence: mustJSON(t, env), Secrets: []string{SealingKey}})
	resp, err := http.Post(b.srv.URL+ReleasePath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || bytes.Contains(got, []byte(SealingKey+`":`)) || !bytes.Contains(got, []byte("released nothing")) {
		t.Errorf("release with the audit failing: %s %s", resp.Status, got)
	}
	if _, err := b.release(t, measurementA); !errors.Is(err, ErrUnavailable) {
		t.Errorf("client: %v", err)
	}
	if records, _ := b.s.Audit(); len(records) != 0 {
		t.Errorf("%d records", len(records))
	}
}

// capture keeps the body of every release answer and, when replace is
// set, answers with it instead.
type capture struct {
	rt      http.RoundTripper
	last    []byte
	replace []byte
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err != nil || r.URL.Path != ReleasePath {
		return resp, err
	}
	c.last, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	body := c.last
	if c.replace != nil {
		body, resp.StatusCode = c.replace, http.StatusOK
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = -1
	return resp, nil
}

// TestClientRefusesReplayedAnswer: a host that keeps a run's affirming
// answer and hands it to a later run (even one with the same runtime
// key) is caught by the signature, which covers the nonce.
func TestClientRefusesReplayedAnswer(t *testing.T) {
	b := newBroker(t)
	c := &capture{rt: http.DefaultTransport}
	b.client.HTTP = &http.Client{Transport: c}
	ctx := context.Background()
	nonce, _ := b.client.Challenge(ctx)
	env, key := b.evidence(t, measurementA, nonce)
	if _, err := b.client.Release(ctx, env, key, []string{SealingKey}); err != nil {
		t.Fatal(err)
	}
	c.replace = c.last
	nonce2, _ := b.client.Challenge(ctx)
	env2, _ := b.evidence(t, measurementA, nonce2)
	env2.RuntimeKey = env.RuntimeKey
	if k, err := b.client.Release(ctx, env2, key, []string{SealingKey}); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "not signed") {
		t.Errorf("a replayed answer: key %x, %v", k, err)
	}
}

// TestClientRefusesAnswerForAnotherMeasurement: a host that has the
// broker judge evidence of its own measurement, bound to a run's runtime
// key and nonce, and hands the run that answer, is caught: the answer
// names another measurement, whose key the run must not seal with.
func TestClientRefusesAnswerForAnotherMeasurement(t *testing.T) {
	b := newBroker(t)
	ctx := context.Background()
	nonce, _ := b.client.Challenge(ctx)
	env, key := b.evidence(t, measurementA, nonce)
	// The host's evidence: measurement B, the run's runtime key and nonce.
	ev, err := b.sim.Attest(ctx, tee.ReportData(measurementB, env.RuntimeKey, nonce))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := sim.Verify(ev)
	if err != nil {
		t.Fatal(err)
	}
	hostEnv := *env
	hostEnv.Evidence, hostEnv.Collateral, hostEnv.Issued, hostEnv.Measurement = ev.Raw, ev.Collateral, claims.Issued, hex.EncodeToString(measurementB[:])
	c := &capture{rt: http.DefaultTransport}
	hostClient := &Client{URL: b.srv.URL, Key: b.s.PublicKey(), HTTP: &http.Client{Transport: c}}
	if _, err := hostClient.Release(ctx, &hostEnv, key, []string{SealingKey}); err != nil {
		t.Fatalf("the host's own release: %v", err)
	}
	b.client.HTTP = &http.Client{Transport: &capture{rt: http.DefaultTransport, replace: c.last}}
	if k, err := b.client.Release(ctx, env, key, []string{SealingKey}); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "for measurement") {
		t.Errorf("another measurement's answer: key %x, %v", k, err)
	}
}

// TestSecretBindsTheNonce: a secret sealed for one nonce does not open
// under another, even in an answer the broker signed for that other
// nonce: the HPKE info binds it.
func TestSecretBindsTheNonce(t *testing.T) {
	b := newBroker(t)
	ctx := context.Background()
	n1, _ := b.client.Challenge(ctx)
	env1, key := b.evidence(t, measurementA, n1)
	m, _ := env1.MeasurementBytes()
	key1, err := b.s.sealingKey(b.s.policy.Load(), m, "insecure")
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := b.s.wrap(env1, map[string][]byte{SealingKey: key1})
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := b.client.Challenge(ctx)
	env2, _ := b.evidence(t, measurementA, n2)
	env2.RuntimeKey = env1.RuntimeKey
	resp := &ReleaseResponse{Status: "affirming", Reasons: []string{}, Measurement: env2.Measurement, Secrets: secrets}
	resp.Signature = ed25519.Sign(b.s.signer, signedBytes(n2, resp))
	b.client.HTTP = &http.Client{Transport: &capture{rt: http.DefaultTransport, replace: mustJSON(t, resp)}}
	if k, err := b.client.Release(ctx, env2, key, []string{SealingKey}); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "does not open") {
		t.Errorf("a secret sealed for another nonce: key %x, %v", k, err)
	}
}

// TestBrokerRefusesUnpinnedSimPolicy: a policy accepting the simulator
// must pin its keys or say sim_keys = "any"; the broker serves no other,
// from Open or SetPolicy.
func TestBrokerRefusesUnpinnedSimPolicy(t *testing.T) {
	parse := func(extra string) *attest.Policy {
		p, err := attest.ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(measurementA[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\n" + extra))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := Open(t.TempDir()+"/b.db", parse("")); !errors.Is(err, ErrPolicyUnsafe) || !strings.Contains(err.Error(), "sim_keys") {
		t.Errorf("Open with an unpinned policy: %v", err)
	}
	b := newBroker(t)
	if err := b.s.SetPolicy(parse("")); !errors.Is(err, ErrPolicyUnsafe) {
		t.Errorf("SetPolicy with an unpinned policy: %v", err)
	}
	if _, err := b.release(t, measurementA); err != nil {
		t.Errorf("the pinned policy still serves: %v", err)
	}
	// Another machine's simulator is refused under the pinned policy...
	_, stranger, _ := ed25519.GenerateKey(rand.Reader)
	orig := b.sim
	b.sim = sim.New(stranger)
	if _, err := b.release(t, measurementA); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not one the policy pins") {
		t.Errorf("a stranger's simulator: %v", err)
	}
	// ...and accepted only when the policy says any explicitly.
	if err := b.s.SetPolicy(parse("sim_keys = \"any\"\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.release(t, measurementA); err != nil {
		t.Errorf("sim_keys = \"any\": %v", err)
	}
	b.sim = orig
	// A policy without the simulator needs no pin.
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(measurementA[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.s.SetPolicy(p); err != nil {
		t.Errorf("a TDX-only policy: %v", err)
	}
}

// TestHardwareEvidenceMarkedInsecureIsRefused: TDX evidence whose
// envelope says it is insecure releases nothing (the class a key is
// derived for must not be in doubt).
func TestHardwareEvidenceMarkedInsecureIsRefused(t *testing.T) {
	b := newBroker(t)
	fake := tdxfake.New(t)
	b.s.Verify = attest.Options{TDXRoots: fake.Roots()}
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(measurementA[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.s.SetPolicy(p)
	nonce, _ := b.client.Challenge(context.Background())
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	pub := key.PublicKey().Bytes()
	ev, err := tdx.NewBackend(fake).Attest(context.Background(), tee.ReportData(measurementA, pub, nonce))
	if err != nil {
		t.Fatal(err)
	}
	env := &tee.Envelope{Version: tee.EnvelopeVersion, Kind: tdx.Kind, Insecure: true, Evidence: ev.Raw, Measurement: hex.EncodeToString(measurementA[:]),
		Profile: "staging", RuntimeKey: pub, Nonce: nonce, Issued: time.Now().UTC()}
	if k, err := b.client.Release(context.Background(), env, key, []string{SealingKey}); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "marked insecure") {
		t.Errorf("TDX evidence marked insecure: key %x, %v", k, err)
	}
}

// FuzzCheckNonce: any bytes are refused with a reason, or are a nonce
// of this broker's of which every flipped byte is refused; none panics.
func FuzzCheckNonce(f *testing.F) {
	s := &Server{nonceKey: bytes.Repeat([]byte{3}, 32)}
	now := time.Unix(1700000000, 0)
	f.Add(s.newNonce(now.Add(NonceLifetime)))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, nonceSize))
	f.Fuzz(func(t *testing.T, nonce []byte) {
		if s.checkNonce(nonce, now) != "" {
			return
		}
		if len(nonce) != nonceSize {
			t.Fatalf("accepted %d bytes", len(nonce))
		}
		for i := range nonce {
			flipped := bytes.Clone(nonce)
			flipped[i] ^= 0x80
			if s.checkNonce(flipped, now) == "" {
				t.Fatalf("accepted %x with byte %d flipped", nonce, i)
			}
		}
	})
}

// TestOpenMigratesAnOlderDatabase: a database from before nonces carried
// their own proof (a table of open nonces, refusals beside releases) opens
// with its keys and its whole audit trail, in order; the table is gone and
// the refusals count against the budget.
func TestOpenMigratesAnOlderDatabase(t *testing.T) {
	path := t.TempDir() + "/old.db"
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{9}, ed25519.SeedSize)
	old := []AuditRecord{
		{Time: time.Unix(1, 0).UTC(), Status: "contraindicated", Reasons: []string{"one"}, Asked: []string{SealingKey}},
		{Time: time.Unix(2, 0).UTC(), Status: "affirming", Reasons: []string{}, Asked: []string{SealingKey}, Released: []string{SealingKey}},
		{Time: time.Unix(3, 0).UTC(), Status: "contraindicated", Reasons: []string{"three"}, Asked: []string{SealingKey}},
	}
	err = db.Update(func(tx *bolt.Tx) error {
		keys, _ := tx.CreateBucket(bucketKeys)
		keys.Put([]byte("signing"), seed)
		keys.Put([]byte("master"), make([]byte, 32))
		nonces, _ := tx.CreateBucket(bucketNonces)
		nonces.Put([]byte("an open nonce"), make([]byte, 8))
		audit, _ := tx.CreateBucket(bucketAudit)
		for _, r := range old {
			seq, _ := audit.NextSequence()
			if err := audit.Put(seqKey(seq), mustJSON(t, r)); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, testPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.PublicKey().Equal(ed25519.NewKeyFromSeed(seed).Public()) {
		t.Error("the signing key changed")
	}
	records, err := s.Audit()
	if err != nil || len(records) != 3 {
		t.Fatalf("audit: %v %+v", err, records)
	}
	for i, r := range records {
		if !r.Time.Equal(old[i].Time) || r.Status != old[i].Status {
			t.Errorf("record %d: %+v, want %+v", i, r, old[i])
		}
	}
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketNonces) != nil {
			t.Error("the table of open nonces is still there")
		}
		if n := tx.Bucket(bucketRefusals).Stats().KeyN; n != 2 {
			t.Errorf("%d refusals apart, want 2", n)
		}
		st, err := loadState(tx, s.Budget)
		if err != nil || st.Bytes != len(mustJSON(t, old[0]))+len(mustJSON(t, old[2])) {
			t.Errorf("budget state %+v, %v", st, err)
		}
		return nil
	})
}
