package ampoule

import (
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestParseNonce: 1 to 64 bytes of hex are the nonce; empty, odd, not
// hex and 65 bytes are usage errors about the host's own input, with a
// hint, and ReadLogCheck refuses them the same way with its own hint.
func TestParseNonce(t *testing.T) {
	for in, want := range map[string]int{"00": 1, "c0ffee": 3, strings.Repeat("ab", 64): 64} {
		if n, err := ParseNonce(in); err != nil || len(n) != want {
			t.Errorf("%q: %d bytes, %v", in, len(n), err)
		}
	}
	for _, in := range []string{"", "abc", "zz", strings.Repeat("ab", 65)} {
		_, err := ParseNonce(in)
		if err == nil {
			t.Errorf("%q: no error", in)
			continue
		}
		if e := errcode.From(err); e.Code != errcode.Usage || !errcode.IsHost(err) || e.Hint() == "" {
			t.Errorf("%q: %v", in, err)
		}
		if _, err = ReadLogCheck("", "", in, ""); in != "" && (err == nil || errcode.From(err).Code != errcode.Usage || !strings.Contains(errcode.From(err).Hint(), "broker issued")) {
			t.Errorf("ReadLogCheck %q: %v", in, err)
		}
	}
}
