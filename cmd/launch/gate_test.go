package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/shim"
)

// TestGateIsTheSameUnderEveryProfile: 'launch gate' prints one table for
// every profile, shim's Gate, and refuses a profile that does not exist.
func TestGateIsTheSameUnderEveryProfile(t *testing.T) {
	want := launch(t, "gate", "--json")
	var rows []struct{ Function, Rule string }
	if err := json.Unmarshal([]byte(want.stdout), &rows); err != nil || len(rows) != len(shim.Gate())+len(shim.AmpouleFunctions()) {
		t.Fatalf("gate --json: %v, %d rows", err, len(rows))
	}
	for _, p := range []string{"debug", "staging", "production"} {
		if got := launch(t, "gate", "--profile", p, "--json"); got.code != 0 || got.stdout != want.stdout {
			t.Errorf("%s: another gate:\n%s", p, got.stdout)
		}
		if got := launch(t, "gate", "--profile", p); !strings.Contains(got.stdout, "under the "+p+" profile, the same as under every other (46 functions of wasi_snapshot_preview1)") {
			t.Errorf("%s: %s", p, got.stdout)
		}
	}
	if r := launch(t, "gate", "--profile", "lax"); r.code == 0 {
		t.Errorf("an unknown profile: %+v", r)
	}
}
