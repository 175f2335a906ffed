package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/shim/audit"
)

// TestAuditSuggestDescribesRows turns a report written by hand (no eBPF
// needed) into a draft: each listed call is shown with the allowlist's own
// description of its rule, a call outside it as a new keyed row to review.
func TestAuditSuggestDescribesRows(t *testing.T) {
	if _, err := shim.Allowlist(); err != nil {
		t.Skipf("no seccomp allowlist here: %v", err)
	}
	report := filepath.Join(t.TempDir(), "audit.json")
	b, _ := json.Marshal(audit.Report{Syscalls: []audit.Count{
		{Nr: 56, Name: "clone", Count: 3},
		{Nr: 435, Name: "clone3", Count: 2},
		{Nr: 0, Name: "read", Count: 40},
		{Nr: 41, Name: "socket", Count: 1},
		{Nr: 157, Name: "prctl", Count: 1},
	}})
	if err := os.WriteFile(report, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := launch(t, "audit", "--suggest", report)
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	for _, want := range []string{
		"unix.SYS_CLONE: {Name: \"clone\", ...}, // allowed only if arg 0 has CLONE_THREAD (0x10000) set; 3 calls\n",
		"unix.SYS_CLONE3: {Name: \"clone3\", ...}, // answered ENOSYS; 2 calls\n",
		"unix.SYS_READ: {Name: \"read\", ...}, // allowed; 40 calls\n",
		"unix.SYS_PRCTL: {Name: \"prctl\", ...}, // before the filter (no_new_privs); 1 calls\n",
		"unix.SYS_SOCKET: {Name: \"socket\", Rule: MatchAll{}, Why: \"say who needs it\"}, // NEW: 1 calls, refused today\n",
		"// 5 calls made, 1 of them new.\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the draft lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "// Allowed but not made by this run: [") || strings.Contains(r.stdout, "made by this run: [clone ") {
		t.Errorf("the unused calls are not listed as such:\n%s", r.stdout)
	}
}
