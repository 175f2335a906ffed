package sandbox

import (
	"strings"
	"testing"
)

// TestVersionWriteText: a commit is shown, marked when the tree had
// changes, and left out when the build has no VCS stamp.
func TestVersionWriteText(t *testing.T) {
	var b strings.Builder
	VersionInfo{Launch: "v1", Commit: "abc", Modified: true, Wazero: "v1.12.0", Go: "go1.26"}.WriteText(&b)
	if want := "launch v1\ncommit abc+modified\nwazero v1.12.0\ngo1.26\n"; b.String() != want {
		t.Errorf("%q, want %q", b.String(), want)
	}
	b.Reset()
	VersionInfo{Launch: "(devel)", Wazero: "v1.12.0", Go: "go1.26"}.WriteText(&b)
	if strings.Contains(b.String(), "commit") {
		t.Errorf("a build without a commit shows one: %q", b.String())
	}
}
