package shim

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// layout builds root/ and outside/ with links of every kind and returns root.
func layout(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside, filepath.Join(root, "sub", "deeper")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644)
	os.WriteFile(filepath.Join(root, "file"), []byte("f"), 0o644)
	links := map[string]string{
		"abs-out":      outside,
		"abs-in":       filepath.Join(root, "file"), // absolute, though it points inside
		"rel-out":      "../outside",
		"rel-in":       "file",
		"sub/up-in":    "../file",
		"sub/up-out":   "../../outside/secret",
		"dangle-in":    "missing",
		"dangle-out":   "../outside/new",
		"chain":        "sub/up-out",
		"loop":         "loop",
		"proc":         "/proc/self/root",
		"sub/deeper/x": "../../../outside",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCheck(t *testing.T) {
	root, err := OpenRoot(layout(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range []struct {
		name   string
		follow bool
		escape bool
	}{
		{"file", true, false},
		{"/file", true, false},
		{".", true, false},
		{"", true, false},
		{"sub/deeper", true, false},
		{"missing", true, false},
		{"sub/missing", true, false},
		{"missing-dir/missing", true, false},
		{"..", true, true},
		{"../outside/secret", true, true},
		{"sub/../../outside", true, true},
		{"abs-out", true, true},
		{"abs-out/secret", true, true},
		{"abs-out", false, false}, // the link itself lies beneath
		{"abs-out/secret", false, true},
		{"abs-in", true, true}, // absolute links are refused
		{"rel-out", true, true},
		{"rel-out/secret", true, true},
		{"rel-out/new-file", true, true},
		{"rel-in", true, false},
		{"sub/up-in", true, false},
		{"sub/up-out", true, true},
		{"sub/up-out", false, false},
		{"dangle-in", true, false},
		{"dangle-out", true, true}, // creating through it would land outside
		{"dangle-out", false, false},
		{"chain", true, true},
		{"proc", true, true},
		{"sub/deeper/x/secret", true, true},
	} {
		err := root.Check(tc.name, tc.follow)
		if got := errors.Is(err, ErrEscape); got != tc.escape {
			t.Errorf("Check(%q, follow=%v) = %v, want escape=%v", tc.name, tc.follow, err, tc.escape)
		}
	}
	// A loop is not an escape: the operation itself reports ELOOP.
	if err := root.Check("loop", true); err != nil {
		t.Errorf("loop: %v", err)
	}
}

func TestHostRootConfinesNothing(t *testing.T) {
	root, err := OpenRoot("/")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := root.Check("proc/self/root/etc", true); err != nil {
		t.Errorf("under / every path is beneath: %v", err)
	}
}

func TestOpenRootErrors(t *testing.T) {
	if _, err := OpenRoot(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing root opened")
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := OpenRoot(f); err == nil {
		t.Error("a file opened as a root")
	}
}
