// Package brokertest starts a real key broker for tests (a bbolt file and
// loopback HTTP) and writes the bundles and policies that use it, for the
// tests of the ampoule package and of launch alike. The broker package's
// own tests do not use it: it imports the broker.
package brokertest

import (
	"encoding/hex"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/tee/sim"
)

// Start runs a real broker with no policy yet, its database in a
// temporary directory, serving on loopback until the test ends.
func Start(t testing.TB) (*broker.Server, *httptest.Server) {
	t.Helper()
	s, err := broker.Open(filepath.Join(t.TempDir(), "broker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

// Bundle is a copy of the notebook example whose sealed mount takes its
// key from the broker at url, pinned by key, under every profile.
func Bundle(t testing.TB, url string, key []byte) string {
	t.Helper()
	return testwasm.CopyBundle(t, testwasm.Example(t, "notebook"), "name = \"notebook\"\nprofiles = [\"debug\", \"staging\", \"production\"]\n"+
		"[broker]\nurl = \""+url+"\"\nkey = \""+hex.EncodeToString(key)+"\"\n[sealed]\nmount = \"/sealed\"\nkey = \"broker\"\n[limits]\nwall_time = \"10s\"\n")
}

// PolicyFor is a policy accepting the bundle's measurement under the
// profile and backend, with extra TOML appended.
func PolicyFor(t testing.TB, bundle, profile, backend, extra string) *attest.Policy {
	t.Helper()
	b, err := loader.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + loader.Measure(b, profile).String() + "\"]\nprofiles = [\"" + profile + "\"]\nbackends = [\"" + backend + "\"]\n" + extra))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SimKeyHex is the public key of the simulator key file at path (made if
// missing), as a policy pins it in sim_keys.
func SimKeyHex(t testing.TB, path string) string {
	t.Helper()
	b, err := sim.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b.PublicKey())
}
