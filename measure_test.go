package ampoule

import (
	"encoding/hex"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
)

// TestMeasure: the report's measurement is the loader's under the
// profile, with the module's digest and the manifest's own verdict on the
// profile; an unknown profile and a missing bundle keep their codes.
func TestMeasure(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	b, err := loader.Open(hello)
	if err != nil {
		t.Fatal(err)
	}
	digest := b.ModuleSHA384()
	for _, p := range []string{"debug", "production"} {
		m, err := Measure(hello, p)
		if err != nil || m.Measurement != loader.Measure(b, p).String() || m.Profile != p || m.ModuleSHA384 != hex.EncodeToString(digest[:]) ||
			m.ProfileAllowed != b.Manifest.AllowsProfile(p) || m.Generated || len(m.CanonicalManifest) == 0 {
			t.Errorf("%s: %+v, %v", p, m, err)
		}
	}
	if _, err := Measure(hello, "prod"); codeOf(err) != errcode.ProfileUnknown {
		t.Errorf("an unknown profile: %v", err)
	}
	if _, err := Measure(t.TempDir()+"/none", "debug"); err == nil || errcode.From(err).Code.Class() != errcode.ClassUsage {
		t.Errorf("a missing bundle: %v", err)
	}
}
