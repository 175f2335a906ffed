package ampoule_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/sealed"
)

// TestSignHandOn: a hand-on from version 1 to a version 2 that accepts
// it verifies under the key's public half for exactly those measurements;
// a from that is no measurement or is the bundle's own, a bundle that does
// not accept it, a profile that does not exist and a key file that is no
// key are refused, each in the usage class. Real bundles, real measurements.
func TestSignHandOn(t *testing.T) {
	file, pub, err := sealed.NewHandOnKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "handon.key")
	if err := os.WriteFile(keyFile, file, 0o600); err != nil {
		t.Fatal(err)
	}
	v1 := notebookVersion(t, "1", "")
	from := measureOf(t, v1, "production")
	v2 := notebookVersion(t, "2", acceptFrom(from))
	h, err := ampoule.SignHandOn(v2, "production", keyFile, from.String())
	if err != nil {
		t.Fatal(err)
	}
	to := measureOf(t, v2, "production")
	if h.From != from || h.To != to {
		t.Errorf("from %s to %s, want %s to %s", h.From, h.To, from, to)
	}
	parsed, err := sealed.ParseHandOn(h.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.Verify(pub, from, to); err != nil {
		t.Errorf("the hand-on does not verify: %v", err)
	}
	if parsed.Verify(pub, from, measureOf(t, v2, "staging")) == nil {
		t.Error("the hand-on verifies for another measurement")
	}
	for name, c := range map[string][4]string{
		"not hex":         {v2, "production", keyFile, "zz"},
		"its own":         {v2, "production", keyFile, to.String()},
		"not accepted":    {v1, "production", keyFile, measureOf(t, v2, "staging").String()},
		"no such profile": {v2, "nightly", keyFile, from.String()},
		"no key":          {v2, "production", v1 + "/ampoule.toml", from.String()},
	} {
		if _, err := ampoule.SignHandOn(c[0], c[1], c[2], c[3]); err == nil || errcode.From(err).Code.Class() != errcode.ClassUsage {
			t.Errorf("%s: %v, want a refusal of the usage class", name, err)
		}
	}
}

// TestReadHandOn: a hand-on file's bytes as they are, a longer one's only
// to a byte past sealed.MaxHandOn (for the parser to refuse); a missing
// file and a directory are usage errors about the host's own input, each
// with the hint.
func TestReadHandOn(t *testing.T) {
	dir := t.TempDir()
	good, big := filepath.Join(dir, "good"), filepath.Join(dir, "big")
	os.WriteFile(good, []byte("hand-on"), 0o644)
	os.WriteFile(big, make([]byte, sealed.MaxHandOn+1), 0o644)
	if data, err := ampoule.ReadHandOn(good); err != nil || string(data) != "hand-on" {
		t.Errorf("%q, %v", data, err)
	}
	if data, err := ampoule.ReadHandOn(big); err != nil || len(data) != sealed.MaxHandOn+1 {
		t.Errorf("a long file: %d bytes, %v", len(data), err)
	}
	for _, path := range []string{filepath.Join(dir, "none"), dir} {
		_, err := ampoule.ReadHandOn(path)
		if e := errcode.From(err); e.Code != errcode.Usage || !errcode.IsHost(err) || e.Hint() == "" {
			t.Errorf("%s: %v", path, err)
		}
	}
}
