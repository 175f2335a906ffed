package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// A host that puts a link where a bundle's mount should be (data -> / or
// data -> ../elsewhere) does not hand the guest a directory outside the
// bundle: the manifest's relative mounts are opened beneath the bundle's
// directory, and the run is refused before it starts.
func TestManifestMountsStayInTheBundle(t *testing.T) {
	files := testwasm.Example(t, "files")
	manifest, err := os.ReadFile(filepath.Join(files, "ampoule.toml"))
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("HOST-SECRET\n"), 0o644)
	for name, target := range map[string]string{"absolute": outside, "relative": "../" + filepath.Base(outside), "root": "/"} {
		t.Run(name, func(t *testing.T) {
			bundle := copyBundle(t, files, string(manifest))
			target := target
			if strings.HasPrefix(target, "../") {
				// A sibling of the bundle's directory.
				sibling := filepath.Join(filepath.Dir(bundle), filepath.Base(outside))
				os.MkdirAll(sibling, 0o755)
				os.WriteFile(filepath.Join(sibling, "secret.txt"), []byte("HOST-SECRET\n"), 0o644)
			}
			if err := os.Symlink(target, filepath.Join(bundle, "data")); err != nil {
				t.Fatal(err)
			}
			for _, profile := range []string{"debug", "staging"} {
				r := launch(t, "run", "--profile", profile, "--backend", "sim", bundle)
				if strings.Contains(r.stdout+r.stderr, "secret.txt") || strings.Contains(r.stdout+r.stderr, "HOST-SECRET") {
					t.Errorf("%s: the guest read through the planted link:\n%s%s", profile, r.stdout, r.stderr)
				}
				if r.code != errcode.ClassUsage.ExitStatus() {
					t.Errorf("%s: exit %d, want %d (a bad bundle)\n%s", profile, r.code, errcode.ClassUsage.ExitStatus(), r.stderr)
				}
				if profile == "debug" && !strings.Contains(r.stderr, errcode.DirInvalid.String()) {
					t.Errorf("debug: want %v, got\n%s", errcode.DirInvalid, r.stderr)
				}
			}
		})
	}
	// A real directory inside the bundle, reached through a link that stays
	// inside, still mounts.
	bundle := copyBundle(t, files, string(manifest))
	os.Mkdir(filepath.Join(bundle, "real"), 0o755)
	os.WriteFile(filepath.Join(bundle, "real", "a.txt"), []byte("one\n"), 0o644)
	os.Symlink("real", filepath.Join(bundle, "data"))
	if r := launch(t, "run", "--backend", "sim", bundle); r.code != 0 || !strings.Contains(r.stdout, "a.txt: 1 lines") {
		t.Errorf("a link inside the bundle no longer mounts: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
