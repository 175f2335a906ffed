package shim

import (
	"strings"
	"testing"
)

// TestAmpouleFunctionsSayHowTheCapabilityIsReached: every capability the
// ampoule module's names suggest exists, so each refused function's Why
// names the way to it, never a capability still to come.
func TestAmpouleFunctionsSayHowTheCapabilityIsReached(t *testing.T) {
	route := map[string]string{"log": "log_recipient", "secret": "[secrets] as files under /run/secrets", "seal": "[sealed]", "attest": "'launch attest'"}
	table := AmpouleFunctions()
	if len(table) != len(route) {
		t.Fatalf("the ampoule module has %d functions, the test knows %d", len(table), len(route))
	}
	for name, rule := range table {
		if rule.Action != Refuse {
			t.Errorf("%s: %v, want refuse", name, rule.Action)
		}
		for _, stale := range []string{"arriv", "not yet", "will ", "until"} {
			if strings.Contains(rule.Why, stale) {
				t.Errorf("%s: %q speaks of a capability to come (%q)", name, rule.Why, stale)
			}
		}
		if !strings.Contains(rule.Why, route[name]) {
			t.Errorf("%s: %q does not name %s", name, rule.Why, route[name])
		}
	}
}
