package profiles

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestWriteTable: a column per profile, a row per setting, each profile's
// own values in its column; and each profile's relaxations listed under
// its name, production's none.
func TestWriteTable(t *testing.T) {
	var b strings.Builder
	WriteTable(&b, All())
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 12 || strings.Fields(lines[0])[0] != "debug" {
		t.Fatalf("table:\n%s", b.String())
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "seccomp ") && strings.Join(strings.Fields(l)[1:], " ") != "no yes yes" {
			t.Errorf("seccomp row %q, want no yes yes", l)
		}
	}
	b.Reset()
	for _, p := range All() {
		p.WriteRelaxations(&b)
	}
	out := b.String()
	if !strings.Contains(out, "\nproduction: ") || !strings.Contains(out, "  no relaxations\n") || !strings.Contains(out, "  warning ") {
		t.Errorf("relaxations:\n%s", out)
	}
	if n := len(mustGet(t, "debug").Warnings()); strings.Count(out, "  warning ") < n {
		t.Errorf("debug's %d warnings are not all listed:\n%s", n, out)
	}
}

func mustGet(t *testing.T, name string) Profile {
	p, err := Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDescribe: every profile, each with its warnings, production's an
// empty list in JSON, never null.
func TestDescribe(t *testing.T) {
	d := Describe(All())
	if len(d) != len(All()) {
		t.Fatalf("%d described", len(d))
	}
	for _, x := range d {
		if x.Warnings == nil || len(x.Warnings) != len(x.Profile.Warnings()) {
			t.Errorf("%s: warnings %v", x.Name, x.Warnings)
		}
	}
	b, err := json.Marshal(d[len(d)-1])
	if err != nil || !strings.Contains(string(b), `"warnings":[]`) {
		t.Errorf("production's JSON: %s, %v", b, err)
	}
}
