package broker

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ampoule-run/ampoule/attest"
)

const apiKeyPath = "default/tenant/api-key"

// grantsPolicy is testPolicy with apiKeyPath granted to measurementA, and
// default/tenant/prod to it under production alone.
func grantsPolicy(t testing.TB) *attest.Policy {
	t.Helper()
	a := hex.EncodeToString(measurementA[:])
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + a + "\", \"" + hex.EncodeToString(measurementB[:]) + "\"]\nprofiles = [\"staging\", \"production\"]\nbackends = [\"sim\"]\nallow_insecure = true\n" + simPin() +
		"[[grants]]\nresources = [\"" + apiKeyPath + "\", \"default/tenant/absent\"]\nmeasurements = [\"" + a + "\"]\ninsecure = true\n" +
		"[[grants]]\nresources = [\"default/tenant/prod\"]\nmeasurements = [\"" + a + "\"]\nprofiles = [\"production\"]\ninsecure = true\n" +
		"[[grants]]\nresources = [\"default/tenant/hw\"]\nmeasurements = [\"" + a + "\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// releaseNames runs the whole protocol for m, asking for names.
func (b *testBroker) releaseNames(t testing.TB, m [48]byte, names ...string) (map[string][]byte, error) {
	t.Helper()
	nonce, err := b.client.Challenge(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	env, key := b.evidence(t, m, nonce)
	return b.client.Release(context.Background(), env, key, names)
}

func TestResourceStore(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "broker.db")
	s, err := Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	value := []byte("the-tenant's-api-key-0123456789")
	if err := s.PutResource(apiKeyPath, value); err != nil {
		t.Fatal(err)
	}
	if err := s.PutResource("default/tenant/db", []byte("x")); err != nil {
		t.Fatal(err)
	}
	list, err := s.Resources()
	if err != nil || len(list) != 2 || list[0].Path != apiKeyPath || list[0].Size != len(value) || list[0].Created.IsZero() || list[1].Path != "default/tenant/db" {
		t.Fatalf("Resources() = %+v, %v", list, err)
	}
	got, err := s.storedValue(apiKeyPath)
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("storedValue = %q, %v", got, err)
	}
	for _, bad := range []string{"tenant/api-key", "a/../b", "a/b/c/d", "ampoule/sealing/key", "ampoule/x/y", ""} {
		if err := s.PutResource(bad, value); !errors.Is(err, ErrResourcePath) {
			t.Errorf("PutResource(%q) = %v", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, make([]byte, MaxResourceBytes+1)} {
		if err := s.PutResource("default/tenant/big", bad); !errors.Is(err, ErrResourceValue) {
			t.Errorf("PutResource of %d bytes = %v", len(bad), err)
		}
	}
	if err := s.PutResource("default/tenant/max", make([]byte, MaxResourceBytes)); err != nil {
		t.Errorf("a value of MaxResourceBytes: %v", err)
	}
	if err := s.RemoveResource("default/tenant/db"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveResource("default/tenant/db"); !errors.Is(err, ErrNoResource) {
		t.Errorf("removing twice: %v", err)
	}
	s.Close()
	// The value is nowhere in the database in the clear.
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, value) {
		t.Error("the database holds the value in the clear")
	}
	if !bytes.Contains(raw, []byte(apiKeyPath)) {
		t.Error("the database does not hold the path (the test looks in the wrong file)")
	}
}

// TestResourceSwappedBetweenPaths: a value moved to another path in the
// database (by whoever can write the file) does not open there, and is
// not released.
func TestResourceSwappedBetweenPaths(t *testing.T) {
	db := filepath.Join(t.TempDir(), "broker.db")
	s, err := Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.PutResource(apiKeyPath, []byte("the right one"))
	s.PutResource("default/tenant/absent", []byte("another run's secret"))
	s.Close()
	bdb, err := bolt.Open(db, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketResources)
		return b.Put([]byte(apiKeyPath), bytes.Clone(b.Get([]byte("default/tenant/absent"))))
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err = Open(db, grantsPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.storedValue(apiKeyPath); err == nil || !strings.Contains(err.Error(), "altered or moved") {
		t.Errorf("a swapped value opens: %v", err)
	}
	b := serve(t, s)
	if got, err := b.releaseNames(t, measurementA, apiKeyPath); err == nil || !errors.Is(err, ErrRefused) {
		t.Errorf("a swapped value is released: %q, %v", got, err)
	}
}

// serve serves s on loopback, as newBroker does.
func serve(t *testing.T, s *Server) *testBroker {
	t.Helper()
	b := newBroker(t)
	b.srv.Config.Handler = s.Handler()
	b.s = s
	b.client.Key = s.PublicKey()
	return b
}

func TestReleaseGrants(t *testing.T) {
	b := newBroker(t)
	if err := b.s.SetPolicy(grantsPolicy(t)); err != nil {
		t.Fatal(err)
	}
	value := []byte("sk-0123456789")
	if err := b.s.PutResource(apiKeyPath, value); err != nil {
		t.Fatal(err)
	}
	b.s.PutResource("default/tenant/prod", []byte("production's"))
	b.s.PutResource("default/tenant/other", []byte("nobody's"))
	b.s.PutResource("default/tenant/hw", []byte("hardware's"))

	// The granted measurement gets its resource, and the sealing key
	// beside it in the same answer, by its path and by its former name.
	got, err := b.releaseNames(t, measurementA, apiKeyPath, SealingKey)
	if err != nil || !bytes.Equal(got[apiKeyPath], value) || len(got[SealingKey]) != 32 {
		t.Fatalf("the granted release: %q, %v", got, err)
	}
	legacy, err := b.releaseNames(t, measurementA, legacySealingKey)
	if err != nil || !bytes.Equal(legacy[legacySealingKey], got[SealingKey]) {
		t.Errorf("the sealing key by its former name: %x, %v (by path %x)", legacy[legacySealingKey], err, got[SealingKey])
	}

	for _, tc := range []struct {
		name  string
		m     [48]byte
		asked []string
		want  string
	}{
		{"another measurement", measurementB, []string{apiKeyPath}, "granted to no run of this measurement"},
		{"not granted", measurementA, []string{"default/tenant/other"}, "default/tenant/other is granted to no run"},
		{"another profile", measurementA, []string{"default/tenant/prod"}, "under profile staging"},
		{"granted, absent", measurementA, []string{"default/tenant/absent"}, "the broker holds nothing there"},
		{"hardware only", measurementA, []string{"default/tenant/hw"}, "default/tenant/hw is granted to no run of this measurement under profile staging on backend sim with insecure evidence"},
		{"one of two not granted", measurementA, []string{apiKeyPath, "default/tenant/other"}, "default/tenant/other is granted to no run"},
		{"the broker's own repository", measurementA, []string{"ampoule/other/key"}, "broker's own repository"},
	} {
		got, err := b.releaseNames(t, tc.m, tc.asked...)
		if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrNotGranted) || !strings.Contains(err.Error(), tc.want) || got != nil {
			t.Errorf("%s: %q, %v, want ErrNotGranted with %q", tc.name, got, err, tc.want)
		}
	}
	// Evidence refused is refused as before, not as a grant.
	if _, err := b.releaseNames(t, measurementC, apiKeyPath); !errors.Is(err, ErrRefused) || errors.Is(err, ErrNotGranted) {
		t.Errorf("a measurement the policy refuses: %v", err)
	}

	// Every decision is in the audit trail: what was asked, what
	// released, and why not.
	records, err := b.s.Audit()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 10 {
		t.Fatalf("%d audit records, want 10: %+v", len(records), records)
	}
	first := records[0]
	if first.Status != "affirming" || !slices.Equal(first.Released, []string{SealingKey, apiKeyPath}) || !slices.Equal(sortedNames(first.Asked), []string{SealingKey, apiKeyPath}) {
		t.Errorf("the release's record: %+v", first)
	}
	for _, r := range records[2:9] {
		if r.Status != "contraindicated" || len(r.Released) != 0 || !slices.ContainsFunc(r.Reasons, func(s string) bool { return strings.Contains(s, "granted") || strings.Contains(s, "own repository") }) {
			t.Errorf("a refused resource's record: %+v", r)
		}
	}
	// The values themselves are in no record.
	for _, r := range records {
		if strings.Contains(strings.Join(append(append(r.Reasons, r.Asked...), r.Released...), " "), string(value)) {
			t.Errorf("a record holds the value: %+v", r)
		}
	}
}

// TestReleaseTheLongestPath: every path a manifest may name can be asked
// for, up to the longest.
func TestReleaseTheLongestPath(t *testing.T) {
	b := newBroker(t)
	long := strings.Repeat("r", 64) + "/" + strings.Repeat("t", 64) + "/" + strings.Repeat("g", 64)
	a := hex.EncodeToString(measurementA[:])
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + a + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\n" + simPin() +
		"[[grants]]\nresources = [\"" + long + "\"]\nmeasurements = [\"" + a + "\"]\ninsecure = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.s.SetPolicy(p)
	if err := b.s.PutResource(long, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.releaseNames(t, measurementA, long); err != nil || string(got[long]) != "v" {
		t.Errorf("the longest path: %q, %v", got, err)
	}
}

// FuzzOpenStored: whatever the database holds at a path, only a record the
// broker sealed for that path opens, to the value it sealed; the rest is
// refused, never a panic.
func FuzzOpenStored(f *testing.F) {
	s, err := Open(filepath.Join(f.TempDir(), "broker.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	s.PutResource(apiKeyPath, []byte("the value"))
	var genuine []byte
	s.db.View(func(tx *bolt.Tx) error {
		genuine = bytes.Clone(tx.Bucket(bucketResources).Get([]byte(apiKeyPath)))
		return nil
	})
	f.Add(apiKeyPath, genuine)
	f.Add("default/tenant/other", genuine)
	f.Add(apiKeyPath, []byte(`{"size":1,"nonce":"AAAAAAAAAAAAAAAA","sealed":"AA=="}`))
	f.Fuzz(func(t *testing.T, path string, raw []byte) {
		v, err := s.openStored(path, raw)
		if err != nil {
			return
		}
		if path != apiKeyPath || string(v) != "the value" {
			t.Fatalf("%q opened at %q to %q", raw, path, v)
		}
	})
}
