package broker

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ampoule-run/ampoule/loader"
)

// syncBuf is a buffer the server's goroutines write to.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRequestLog: every request ends with one line, with its method,
// path, status, decision and duration, and nothing of the secrets the
// answer wraps or the evidence's nonce.
func TestRequestLog(t *testing.T) {
	b := newBroker(t)
	var out syncBuf
	b.s.RequestLog = &out
	b.srv.Config.Handler = b.s.Handler()
	if _, err := b.release(t, measurementA); err != nil {
		t.Fatal(err)
	}
	if _, err := b.release(t, measurementC); err == nil {
		t.Fatal("released to a measurement the policy lacks")
	}
	resp, err := http.Post(b.srv.URL+ReleasePath, "application/json", strings.NewReader("{"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	want := []string{
		`POST /v1/challenge 200 challenge`,
		`POST /v1/release 200 affirming`,
		`POST /v1/challenge 200 challenge`,
		`POST /v1/release 403 contraindicated`,
		`POST /v1/release 400 malformed`,
	}
	if len(lines) != len(want) {
		t.Fatalf("lines:\n%s", out.String())
	}
	line := regexp.MustCompile(`^\d{4}-\d\d-\d\dT[0-9:.]+Z 127\.0\.0\.1 (.*) [0-9.]+(µs|ms|s)$`)
	for i, l := range lines {
		m := line.FindStringSubmatch(l)
		if m == nil || m[1] != want[i] {
			t.Errorf("line %d: %q, want %q", i, l, want[i])
		}
	}
	// No secret material: the sealing key's wrapping and the nonce never
	// reach the log.
	if strings.Contains(out.String(), "nonce") || strings.Contains(out.String(), "secret") {
		t.Errorf("the log holds request content: %s", out.String())
	}
}

// TestIndex: GET / names the service, its version, key and endpoints;
// other paths stay 404.
func TestIndex(t *testing.T) {
	b := newBroker(t)
	b.s.Version = "v1.2.3"
	resp, err := http.Get(b.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var idx Index
	if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /: %v %v", resp.Status, err)
	}
	if idx.Service != "ampoule key broker" || idx.Version != "v1.2.3" || idx.Key != hex.EncodeToString(b.s.PublicKey()) ||
		strings.Join(idx.Endpoints, ",") != "POST /v1/challenge,POST /v1/release,POST /kbs/v0/auth,POST /kbs/v0/attest,GET /kbs/v0/resource/{repository}/{type}/{tag},GET /.well-known/jwks.json" {
		t.Errorf("index %+v", idx)
	}
	r2, err := http.Get(b.srv.URL + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 404 {
		t.Errorf("GET /nothing: %s", r2.Status)
	}
}

// bundleFor is a Bundle whose manifest and module digest make m under
// the staging profile, as m's Measure would be.
func bundleFor(name, version string) (*Bundle, [48]byte) {
	manifest := []byte(`{"name":"` + name + `","version":"` + version + `"}`)
	module := sha512.Sum384([]byte("a module"))
	return &Bundle{Name: name, Version: version, Manifest: manifest, Module: hex.EncodeToString(module[:])},
		loader.MeasureParts(module, manifest, "staging")
}

// TestAuditNamesBundle: a request whose bundle's proof makes the
// evidence's measurement is audited with the name and version bound; a
// name without proof is audited as claimed; a proof that does not make
// the measurement, or a name that is not the manifest's, is refused
// before any verdict.
func TestAuditNamesBundle(t *testing.T) {
	b := newBroker(t)
	bundle, m := bundleFor("notebook", "1.4.0")
	pol := testPolicy(t)
	pol.Measurements = append(pol.Measurements, m)
	b.s.SetPolicy(pol)

	b.client.Bundle = bundle
	if _, err := b.release(t, m); err != nil {
		t.Fatal(err)
	}
	b.client.Bundle = &Bundle{Name: "notebook", Version: "9"}
	if _, err := b.release(t, m); err != nil {
		t.Fatal(err)
	}
	// The proof of another bundle: the request was altered.
	other, _ := bundleFor("other", "1.0")
	b.client.Bundle = other
	if _, err := b.release(t, m); !errors.Is(err, ErrRefused) {
		t.Fatalf("another bundle's proof: %v", err)
	}
	// The right proof under another name.
	renamed := *bundle
	renamed.Name = "renamed"
	b.client.Bundle = &renamed
	if _, err := b.release(t, m); !errors.Is(err, ErrRefused) {
		t.Fatalf("a name that is not the manifest's: %v", err)
	}
	records, err := b.s.Audit()
	if err != nil || len(records) != 4 {
		t.Fatalf("audit: %v %+v", err, records)
	}
	for i, want := range []struct {
		bundle, status, reason string
	}{
		{"notebook 1.4.0", "affirming", ""},
		{"notebook 9 (claimed)", "affirming", ""},
		{"other 1.0 (claimed)", "contraindicated", "do not make the evidence's measurement"},
		{"renamed 1.4.0 (claimed)", "contraindicated", "is not its manifest's"},
	} {
		r := records[i]
		if r.Bundle.String() != want.bundle || r.Status != want.status || (want.reason != "" && !strings.Contains(strings.Join(r.Reasons, ";"), want.reason)) {
			t.Errorf("record %d: %s %s %v, want %+v", i, r.Bundle, r.Status, r.Reasons, want)
		}
	}
}

// TestAdminSocketWhileServing: the audit trail is read over the
// administration socket while the broker holds the database (which no
// second process can open), and a socket no broker answers on says so.
func TestAdminSocketWhileServing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "broker.db")
	s, err := Open(db, testPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	b := &testBroker{s: s, srv: srv, client: &Client{URL: srv.URL, Key: s.PublicKey()}, sim: newBroker(t).sim}
	sock := AdminSocket(db)
	stop, err := s.ServeAdmin(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	if _, err := b.release(t, measurementA); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(db, nil); !errors.Is(err, ErrDatabase) {
		t.Fatalf("a second open of a served database: %v", err)
	}
	records, err := ReadAuditSocket(context.Background(), sock)
	if err != nil || len(records) != 1 || records[0].Status != "affirming" {
		t.Fatalf("audit over the socket: %v %+v", err, records)
	}
	// A broker that ended removes its socket; one killed leaves it, not
	// answered, and a new broker replaces it.
	stop()
	if _, err := os.Lstat(sock); err == nil {
		t.Fatal("the socket outlived its server's stop")
	}
	stop() // a second stop is harmless
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := ReadAuditSocket(context.Background(), sock); !errors.Is(err, ErrNoAdmin) {
		t.Errorf("a stale socket: %v", err)
	}
	if _, err := ReadAuditSocket(context.Background(), filepath.Join(dir, "none.sock")); !errors.Is(err, ErrNoAdmin) {
		t.Errorf("no socket: %v", err)
	}
	stop2, err := s.ServeAdmin(sock)
	if err != nil {
		t.Fatalf("serving again over the old socket: %v", err)
	}
	defer stop2()
	if records, err := ReadAuditSocket(context.Background(), sock); err != nil || len(records) != 1 {
		t.Errorf("after restart: %v", err)
	}
	// A file that is not a socket is not replaced.
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o600)
	if _, err := s.ServeAdmin(plain); err == nil {
		t.Error("replaced a plain file")
	}
}

// TestAdminSecrets: the stored resources are read and changed through the
// administration socket of the broker holding the database, with the
// store's own refusals, and what is put there is what the broker holds.
func TestAdminSecrets(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "broker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sock := filepath.Join(dir, "a.sock")
	stop, err := s.ServeAdmin(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	a := DialAdmin(sock)
	value := []byte("api key\x00with every byte\xff")
	if err := a.PutResource(ctx, "default/tenant/api-key", value); err != nil {
		t.Fatal(err)
	}
	if got, err := s.storedValue("default/tenant/api-key"); err != nil || !bytes.Equal(got, value) {
		t.Errorf("stored %q, %v", got, err)
	}
	list, err := a.Resources(ctx)
	if err != nil || len(list) != 1 || list[0].Path != "default/tenant/api-key" || list[0].Size != len(value) {
		t.Errorf("list %+v, %v", list, err)
	}
	for name, tc := range map[string]struct {
		err  error
		want error
	}{
		"the broker's own repository": {a.PutResource(ctx, "ampoule/sealing/key", value), ErrResourcePath},
		"a path of two parts":         {a.PutResource(ctx, "default/api-key", value), ErrResourcePath},
		"a path with ..":              {a.PutResource(ctx, "default/../x", value), ErrResourcePath},
		"an empty value":              {a.PutResource(ctx, "default/tenant/empty", nil), ErrResourceValue},
		"too long a value":            {a.PutResource(ctx, "default/tenant/big", make([]byte, MaxResourceBytes+1)), ErrResourceValue},
		"removing what is not there":  {a.RemoveResource(ctx, "default/tenant/other"), ErrNoResource},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", name, tc.err, tc.want)
		}
	}
	if err := a.RemoveResource(ctx, "default/tenant/api-key"); err != nil {
		t.Fatal(err)
	}
	if list, err := a.Resources(ctx); err != nil || len(list) != 0 {
		t.Errorf("after rm: %+v, %v", list, err)
	}
	stop()
	if _, err := a.Resources(ctx); !errors.Is(err, ErrNoAdmin) {
		t.Errorf("no broker serving: %v", err)
	}
}
