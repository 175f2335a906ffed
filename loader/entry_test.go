package loader

import (
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// entry names a reactor's function to run; it is measured when given and
// left out of the canonical form otherwise.
func TestEntryKey(t *testing.T) {
	m := mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\nentry = \"run\"\n")
	if m.Entry != "run" || !strings.Contains(string(m.Canonical()), `"entry":"run"`) {
		t.Errorf("entry %q, canonical %s", m.Entry, m.Canonical())
	}
	if c := string(mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n").Canonical()); strings.Contains(c, "entry") {
		t.Errorf("a command's canonical form names an entry: %s", c)
	}
	base := Measure(bundle(t, baseManifest, minimalModule), "debug")
	seen := map[Measurement]string{base: "no entry"}
	for _, e := range []string{"run", "main"} {
		got := Measure(bundle(t, strings.Replace(baseManifest, `name = "hello"`, "name = \"hello\"\nentry = \""+e+"\"", 1), minimalModule), "debug")
		if other, ok := seen[got]; ok {
			t.Errorf("entry %q measures as %s", e, other)
		}
		seen[got] = e
	}
	for _, bad := range []string{`""`, `"_start"`, `"has space"`, `"` + strings.Repeat("a", 129) + `"`, `"1st"`, `3`} {
		_, err := ParseManifest("ampoule.toml", []byte("name = \"x\"\nprofiles = [\"debug\"]\nentry = "+bad+"\n"))
		if codeOf(err) != errcode.ManifestInvalid || !strings.Contains(err.Error(), "ampoule.toml:3: entry") {
			t.Errorf("entry = %s: %v", bad, err)
		}
	}
}
