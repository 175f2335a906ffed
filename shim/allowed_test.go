package shim

import (
	"strings"
	"testing"
)

// TestAllowedCalls: the calls the runner makes before its filter are known on
// every architecture; where the allowlist exists, each of its calls is
// described.
func TestAllowedCalls(t *testing.T) {
	a := AllowedCalls()
	if !strings.HasPrefix(a["prctl"], "before the filter") || !strings.HasPrefix(a["seccomp"], "before the filter") {
		t.Errorf("%v", a)
	}
	if len(a) > 2 && a["read"] == "" {
		t.Errorf("an allowlist without read: %v", a)
	}
}
