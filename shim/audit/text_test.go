package audit

import (
	"strings"
	"testing"
)

// TestDraftWriteTo: a call the allowlist takes says how, one it refuses is
// marked NEW, an allowed call not made is listed, and the totals close it.
func TestDraftWriteTo(t *testing.T) {
	allowed := map[string]string{"read": "allowed", "futex": "allowed"}
	d := Suggest([]Count{{Name: "read", Count: 3}, {Name: "ptrace", Count: 1}}, allowed)
	var b strings.Builder
	if _, err := d.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`unix.SYS_READ: {Name: "read", ...}, // allowed; 3 calls`,
		`unix.SYS_PTRACE: {Name: "ptrace", Rule: MatchAll{}, Why: "say who needs it"}, // NEW: 1 calls, refused today`,
		"// Allowed but not made by this run: [futex]",
		"// 2 calls made, 1 of them new.",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("no line %q in\n%s", want, out)
		}
	}
	b.Reset()
	WriteCounts(&b, "p:", []Count{{Name: "read", Count: 3}}, allowed)
	if !strings.HasPrefix(b.String(), "p: 1 kinds of system call") || !strings.Contains(b.String(), "read") || !strings.Contains(b.String(), "allowed") {
		t.Errorf("counts:\n%s", b.String())
	}
}
