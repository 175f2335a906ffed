package ampoule_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/shim/audit"
)

// TestWriteAudit: a run's audit prints one row a system call with the
// allowlist's rule beside it, and its JSON file reads back as what
// 'launch audit --suggest' takes; a file that cannot be written is a
// warning line, and a run without an audit prints nothing.
func TestWriteAudit(t *testing.T) {
	counts := []audit.Count{{Name: "read", Count: 7}, {Name: "ptrace", Count: 1}}
	file := filepath.Join(t.TempDir(), "audit.json")
	var b strings.Builder
	ampoule.Result{Audit: counts}.WriteAudit(&b, file)
	out := b.String()
	if !strings.HasPrefix(out, "launch: audit: 2 kinds of system call") || !strings.Contains(out, "read") || !strings.Contains(out, "ptrace") || strings.Contains(out, "warning") {
		t.Errorf("the audit printed:\n%s", out)
	}
	rep, err := audit.ReadReportFile(file)
	if err != nil || len(rep.Syscalls) != 2 || rep.Syscalls[0] != counts[0] {
		t.Errorf("the JSON file read back: %+v, %v", rep, err)
	}
	b.Reset()
	ampoule.Result{Audit: counts}.WriteAudit(&b, filepath.Join(t.TempDir(), "no", "such", "dir", "a.json"))
	if !strings.Contains(b.String(), "launch: warning: writing ") {
		t.Errorf("an unwritable file gave no warning:\n%s", b.String())
	}
	b.Reset()
	ampoule.Result{}.WriteAudit(&b, file)
	if b.Len() != 0 {
		t.Errorf("a run without an audit printed %q", b.String())
	}
}
