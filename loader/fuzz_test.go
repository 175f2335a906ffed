package loader

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// registered fails the fuzz run unless err carries a registered code.
func registered(t *testing.T, err error) {
	t.Helper()
	var e *errcode.Error
	if !errors.As(err, &e) || !e.Code.Registered() {
		t.Fatalf("error without a registered code: %#v", err)
	}
	if e.Hint() == "" {
		t.Fatalf("%v has no hint", e.Code)
	}
}

// FuzzParseManifest: any bytes either parse to a manifest whose canonical
// form is stable JSON within the documented bounds, or fail with a
// registered code. Seeds: testdata/fuzz/FuzzParseManifest.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(baseManifest))
	f.Add([]byte("name = \"x\"\nprofiles = [\"debug\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest("ampoule.toml", data)
		if err != nil {
			registered(t, err)
			return
		}
		c := m.Canonical()
		if !json.Valid(c) {
			t.Fatalf("canonical form is not JSON: %s", c)
		}
		again, err := ParseManifest("ampoule.toml", data)
		if err != nil || !bytes.Equal(again.Canonical(), c) {
			t.Fatalf("parsing twice differs: %v", err)
		}
		l := m.Limits
		if l.MemoryBytes < PageSize || l.MemoryBytes > MaxMemoryBytes || l.MemoryBytes%PageSize != 0 || l.WallTime <= 0 || l.OutputBytes <= 0 {
			t.Fatalf("limits out of bounds: %+v", l)
		}
		if !namePattern.match(m.Name) || len(m.Profiles) == 0 {
			t.Fatalf("invalid manifest accepted: %+v", m)
		}
	})
}

// FuzzFromTar: any stream either yields a bundle holding a wasm module and a
// valid manifest, or fails with a registered code. Seeds:
// testdata/fuzz/FuzzFromTar.
func FuzzFromTar(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := FromTar(bytes.NewReader(data), "fuzz.tar")
		if err != nil {
			registered(t, err)
			return
		}
		if !IsWasm(b.Module) || b.Manifest == nil {
			t.Fatalf("accepted a bundle without a module or manifest")
		}
		if _, err := ParseManifest("ampoule.toml", b.ManifestBytes); err != nil {
			t.Fatalf("the bundle's manifest does not parse on its own: %v", err)
		}
		Measure(b, "debug")
	})
}

// FuzzParseMount: a parsed mount prints back to a string that parses to the
// same mount.
func FuzzParseMount(f *testing.F) {
	for _, s := range []string{"data::/data", "out::/out::rw", "/::/::ro", "a:b::/c", "x::y", "::/", "a::/b::c::d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMount(s)
		if err != nil {
			return
		}
		again, err := ParseMount(m.String())
		if err != nil || again != m {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, m, m.String(), again, err)
		}
	})
}
