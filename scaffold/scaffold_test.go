package scaffold

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/logging"
)

// commentedKey is a line of the manifest Files makes that is an optional
// key commented out: "# key = value" (prose examples are indented further).
var commentedKey = regexp.MustCompile(`^# ([A-Za-z_]+) = `)

// TestInitManifestKeysAreValid: the manifest Files makes parses, as
// made and with its log recipient written in; every optional key it has
// commented out parses once uncommented, alone and all together; and every
// key a new user meets has its comment.
func TestInitManifestKeysAreValid(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for _, recipient := range []string{"", id.Recipient().String()} {
		files, err := Files("my-app", Options{LogRecipient: recipient})
		if err != nil {
			t.Fatal(err)
		}
		manifest := files[0].Body
		m, err := loader.ParseManifest("ampoule.toml", []byte(manifest))
		if err != nil {
			t.Fatalf("the manifest Files makes: %v\n%s", err, manifest)
		}
		if m.Name != "my-app" || m.LogRecipient != recipient {
			t.Errorf("name %q, log_recipient %q; want my-app and %q", m.Name, m.LogRecipient, recipient)
		}
		lines := strings.Split(manifest, "\n")
		var keys []string
		all := append([]string{}, lines...)
		for i, l := range lines {
			k := commentedKey.FindStringSubmatch(l)
			if k == nil {
				continue
			}
			keys = append(keys, k[1])
			one := append([]string{}, lines...)
			one[i] = strings.TrimPrefix(l, "# ")
			all[i] = one[i]
			if _, err := loader.ParseManifest("ampoule.toml", []byte(strings.Join(one, "\n"))); err != nil {
				t.Errorf("%q uncommented: %v", l, err)
			}
		}
		if _, err := loader.ParseManifest("ampoule.toml", []byte(strings.Join(all, "\n"))); err != nil {
			t.Errorf("every optional key uncommented: %v", err)
		}
		want := []string{"module", "dirs", "stdin", "LANG", "output", "open_files", "file_output"}
		if strings.Join(keys, " ") != strings.Join(want, " ") {
			t.Errorf("the keys commented out are %q, want %q", keys, want)
		}
		for _, k := range []string{"name", "version", "args", "profiles", "dirs", "log_recipient", "[env]", "[limits]", "memory", "wall_time"} {
			if !strings.Contains(manifest, "\n# "+k+": ") {
				t.Errorf("no comment explains %s", k)
			}
		}
	}
}

// TestInitGoModIsAModulePath: the go.mod init writes names the bundle as
// its module path where the go command accepts it, and "workload" where
// it does not (a trailing dot, a name Windows reserves), with go 1.26 and
// no dependencies.
func TestInitGoModIsAModulePath(t *testing.T) {
	for name, path := range map[string]string{
		"hello": "hello", "my.app-1_x": "my.app-1_x", "v2.": "workload", "aux": "workload", "com1.svc": "workload", "console": "console",
	} {
		if got, want := GoMod(name), "module "+path+"\n\ngo 1.26\n"; got != want {
			t.Errorf("%s: go.mod %q, want %q", name, got, want)
		}
	}
}

// TestWrite: a new bundle's files land in a missing or empty directory,
// each as Files made it; a directory holding anything, a file in the
// directory's place, a name that is no bundle name and a recipient that is
// no key are refused with their codes, and nothing is written.
func TestWrite(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "hello")
	if err := Write(dir, "hello", Options{}); err != nil {
		t.Fatal(err)
	}
	files, err := Files("hello", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		got, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil || string(got) != f.Body {
			t.Errorf("%s: %q, %v; want %q", f.Name, got, err, f.Body)
		}
	}
	plain := filepath.Join(root, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, name string
		o         Options
		want      errcode.Code
	}{
		{dir, "hello", Options{}, errcode.InitDirNotEmpty},
		{plain, "plain", Options{}, errcode.InitDirNotEmpty},
		{filepath.Join(root, "Bad Name"), "Bad Name", Options{}, errcode.Usage},
		{filepath.Join(root, "other"), "other", Options{LogRecipient: "alog1nothex"}, errcode.Usage},
	} {
		err := Write(c.dir, c.name, c.o)
		if got := errcode.From(err).Code; err == nil || got != c.want {
			t.Errorf("Write(%s, %q): %v; want %v", c.dir, c.name, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "other")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Write made its directory: %v", err)
	}
}
