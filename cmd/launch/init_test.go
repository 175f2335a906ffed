package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/logging"
)

// commentedKey is a line of the manifest init makes that is an optional
// key commented out: "# key = value" (prose examples are indented further).
var commentedKey = regexp.MustCompile(`^# ([A-Za-z_]+) = `)

// TestInitManifestKeysAreValid: the manifest launch init makes parses, as
// made and with its log recipient written in; every optional key it has
// commented out parses once uncommented, alone and all together; and every
// key a new user meets has its comment.
func TestInitManifestKeysAreValid(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for _, recipient := range []string{"", id.Recipient().String()} {
		manifest := scaffoldFiles("my-app", recipient)[0].body
		m, err := loader.ParseManifest("ampoule.toml", []byte(manifest))
		if err != nil {
			t.Fatalf("the manifest init makes: %v\n%s", err, manifest)
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
		if got, want := goMod(name), "module "+path+"\n\ngo 1.26\n"; got != want {
			t.Errorf("%s: go.mod %q, want %q", name, got, want)
		}
	}
}
