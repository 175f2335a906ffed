package loader

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
)

// minimalModule is the smallest valid core module: magic and version.
var minimalModule = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

const baseManifest = `# A test manifest.
name = "hello"
version = "1.0.0"
args = ["--greet", "world"]
dirs = ["data::/data", "out::/out::rw"]
profiles = ["debug", "staging", "production"]
log_recipient = "alog1abababababababababababababababababababababababababababababababab"

[env]
GREETING = "hi"
LANG = "C"

[limits]
memory = "64MiB"
wall_time = "30s"
output = 1048576
open_files = 16
file_output = "10MiB"
`

func mustParse(t *testing.T, doc string) *Manifest {
	t.Helper()
	m, err := ParseManifest("ampoule.toml", []byte(doc))
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	return m
}

func codeOf(err error) errcode.Code {
	var e *errcode.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestParseManifest(t *testing.T) {
	m := mustParse(t, baseManifest)
	if m.Name != "hello" || m.Version != "1.0.0" || m.Module != DefaultModule {
		t.Errorf("name/version/module = %q %q %q", m.Name, m.Version, m.Module)
	}
	if strings.Join(m.Args, " ") != "--greet world" {
		t.Errorf("args = %q", m.Args)
	}
	if m.Env["GREETING"] != "hi" || m.Env["LANG"] != "C" || len(m.Env) != 2 {
		t.Errorf("env = %v", m.Env)
	}
	want := []Mount{{"data", "/data", false}, {"out", "/out", true}}
	if len(m.Dirs) != 2 || m.Dirs[0] != want[0] || m.Dirs[1] != want[1] {
		t.Errorf("dirs = %+v", m.Dirs)
	}
	if m.Limits.MemoryBytes != 64<<20 || m.Limits.MemoryPages() != 1024 || m.Limits.WallTime != 30*time.Second || m.Limits.OutputBytes != 1<<20 || m.Limits.OpenFiles != 16 || m.Limits.FileOutputBytes != 10<<20 {
		t.Errorf("limits = %+v", m.Limits)
	}
	if !m.AllowsProfile("production") || m.AllowsProfile("prod") {
		t.Error("AllowsProfile is wrong")
	}
}

func TestDefaults(t *testing.T) {
	m := mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n")
	if m.Limits != DefaultLimits() {
		t.Errorf("defaults not applied: %+v", m.Limits)
	}
	m = mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nmemory = 100000\n")
	if m.Limits.MemoryBytes != 2*PageSize {
		t.Errorf("memory not rounded up to whole pages: %d", m.Limits.MemoryBytes)
	}
	if m.Sealed != nil {
		t.Errorf("a manifest without [sealed] has a sealed mount: %+v", m.Sealed)
	}
	m = mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/state\"\n")
	if m.Sealed == nil || !reflect.DeepEqual(*m.Sealed, Sealed{Guest: "/state", MaxBytes: DefaultSealedSize, Key: SealedKeyTEE}) {
		t.Errorf("sealed = %+v", m.Sealed)
	}
	m = mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\nsealed = { mount = \"/s\", max_size = \"2MiB\" }\n")
	if m.Sealed == nil || !reflect.DeepEqual(*m.Sealed, Sealed{Guest: "/s", MaxBytes: 2 << 20, Key: SealedKeyTEE}) {
		t.Errorf("sealed = %+v", m.Sealed)
	}
	if got := string(m.Canonical()); !strings.Contains(got, `"sealed":{"guest":"/s","key":"tee","max_bytes":2097152}`) {
		t.Errorf("canonical form lacks the sealed mount: %s", got)
	}
	key := strings.Repeat("ab", 32)
	m = mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n[broker]\nurl = \"https://broker.example:7443\"\nkey = \""+key+"\"\n[sealed]\nmount = \"/s\"\nkey = \"broker\"\n")
	if m.Broker == nil || m.Broker.URL != "https://broker.example:7443" || len(m.Broker.Key) != 32 || m.Sealed.Key != SealedKeyBroker {
		t.Errorf("broker %+v, sealed %+v", m.Broker, m.Sealed)
	}
	if got := string(m.Canonical()); !strings.HasPrefix(got, `{"args":[],"broker":{"key":"`+key+`","url":"https://broker.example:7443"}`) {
		t.Errorf("canonical form lacks the broker: %s", got)
	}
}

// TestManifestErrors proves each bad manifest is refused with the right code,
// naming the file, the line and the key.
func TestManifestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		code      errcode.Code
		want      string // substring of the message
	}{
		{"syntax", "name = \"x\nprofiles = []\n", errcode.ManifestSyntax, "ampoule.toml:1:"},
		{"syntax later", "name = \"x\"\n\nprofiles = [\"debug\"\n", errcode.ManifestSyntax, "ampoule.toml:3:"},
		{"unknown key", "name = \"x\"\nprofiles = [\"debug\"]\nmemroy = 3\n", errcode.ManifestInvalid, "ampoule.toml:3: memroy: unknown key"},
		{"unknown nested key", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\n\nmemroy = \"1MiB\"\n", errcode.ManifestInvalid, "ampoule.toml:5: limits.memroy: unknown key"},
		{"wrong type", "name = \"x\"\nprofiles = [\"debug\"]\nargs = \"a b\"\n", errcode.ManifestInvalid, "ampoule.toml:3: args"},
		{"wrong element type", "name = \"x\"\nprofiles = [\"debug\"]\nargs = [1]\n", errcode.ManifestInvalid, "ampoule.toml:3: args"},
		{"missing name", "profiles = [\"debug\"]\n", errcode.ManifestInvalid, "ampoule.toml: name: is required"},
		{"bad name", "name = \"Hello World\"\nprofiles = [\"debug\"]\n", errcode.ManifestInvalid, "ampoule.toml:1: name:"},
		{"missing profiles", "name = \"x\"\n", errcode.ManifestInvalid, "profiles: is required"},
		{"empty profiles", "name = \"x\"\nprofiles = []\n", errcode.ManifestInvalid, "ampoule.toml:2: profiles: is empty"},
		{"unknown profile", "name = \"x\"\nprofiles = [\n  \"debug\",\n  \"prod\",\n]\n", errcode.ManifestInvalid, "ampoule.toml:4: profiles[1]: \"prod\" is not a profile"},
		{"duplicate profile", "name = \"x\"\nprofiles = [\"debug\", \"debug\"]\n", errcode.ManifestInvalid, "profiles[1]"},
		{"bad memory", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nmemory = \"12XB\"\n", errcode.ManifestInvalid, "ampoule.toml:4: limits.memory: \"12XB\" is not a size"},
		{"memory type", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nmemory = true\n", errcode.ManifestInvalid, "limits.memory: a boolean is not a size"},
		{"memory too big", "name = \"x\"\nprofiles = [\"debug\"]\nlimits = { memory = \"5GiB\" }\n", errcode.ManifestInvalid, "ampoule.toml:3: limits.memory:"},
		{"negative memory", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nmemory = -1\n", errcode.ManifestInvalid, "limits.memory"},
		{"bad wall time", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nwall_time = \"soon\"\n", errcode.ManifestInvalid, "ampoule.toml:4: limits.wall_time:"},
		{"zero wall time", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nwall_time = \"0s\"\n", errcode.ManifestInvalid, "limits.wall_time"},
		{"bad recipient", "name = \"x\"\nprofiles = [\"debug\"]\nlog_recipient = \"age1xyz\"\n", errcode.ManifestInvalid, "ampoule.toml:3: log_recipient:"},
		{"zero output", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\noutput = 0\n", errcode.ManifestInvalid, "limits.output"},
		{"open files type", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nopen_files = \"many\"\n", errcode.ManifestInvalid, "ampoule.toml:4: limits.open_files: a string is not a count"},
		{"open files range", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nopen_files = 0\n", errcode.ManifestInvalid, "limits.open_files: 0 is out of range"},
		{"open files too many", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nopen_files = 4097\n", errcode.ManifestInvalid, "limits.open_files: 4097 is out of range"},
		{"file output", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nfile_output = \"lots\"\n", errcode.ManifestInvalid, "limits.file_output"},
		// 0 means one thing in every limit: out of range, never unlimited.
		{"file output zero", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nfile_output = 0\n", errcode.ManifestInvalid, "limits.file_output"},
		{"output zero", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\noutput = \"0B\"\n", errcode.ManifestInvalid, "limits.output"},
		{"memory zero", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nmemory = 0\n", errcode.ManifestInvalid, "limits.memory"},
		{"open files zero", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nopen_files = 0\n", errcode.ManifestInvalid, "limits.open_files"},
		{"wall time zero", "name = \"x\"\nprofiles = [\"debug\"]\n[limits]\nwall_time = \"0s\"\n", errcode.ManifestInvalid, "limits.wall_time"},
		{"sealed size zero", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\nmax_size = 0\n", errcode.ManifestInvalid, "sealed.max_size"},
		{"bad dir", "name = \"x\"\nprofiles = [\"debug\"]\ndirs = [\"data:/data\"]\n", errcode.ManifestInvalid, "ampoule.toml:3: dirs[0]:"},
		{"relative guest", "name = \"x\"\nprofiles = [\"debug\"]\ndirs = [\"data::data\"]\n", errcode.ManifestInvalid, "must be absolute"},
		{"bad dir mode", "name = \"x\"\nprofiles = [\"debug\"]\ndirs = [\"data::/data::wr\"]\n", errcode.ManifestInvalid, "rw or ro"},
		{"duplicate guest", "name = \"x\"\nprofiles = [\"debug\"]\ndirs = [\"a::/d\", \"b::/d\"]\n", errcode.ManifestInvalid, "dirs[1]"},
		{"bad env name", "name = \"x\"\nprofiles = [\"debug\"]\n[env]\n\"A=B\" = \"c\"\n", errcode.ManifestInvalid, "ampoule.toml:4: env.A=B"},
		{"nul in arg", "name = \"x\"\nprofiles = [\"debug\"]\nargs = [\"a\\u0000b\"]\n", errcode.ManifestInvalid, "args[0]: contains a NUL"},
		{"module path", "name = \"x\"\nprofiles = [\"debug\"]\nmodule = \"../x.wasm\"\n", errcode.ManifestInvalid, "ampoule.toml:3: module:"},
		{"not utf8", "name = \"\xff\"\n", errcode.ManifestSyntax, "UTF-8"},
		{"too large", strings.Repeat("#", MaxManifestBytes+1), errcode.BundleTooLarge, "more than"},
		{"sealed without mount", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmax_size = \"1MiB\"\n", errcode.ManifestInvalid, "sealed.mount: is required"},
		{"sealed relative", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"sealed\"\n", errcode.ManifestInvalid, "ampoule.toml:4: sealed.mount: \"sealed\" is not a mount point"},
		{"sealed root", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/\"\n", errcode.ManifestInvalid, "sealed.mount"},
		{"sealed unclean", "name = \"x\"\nprofiles = [\"debug\"]\nsealed = { mount = \"/a/../b\" }\n", errcode.ManifestInvalid, "ampoule.toml:3: sealed.mount"},
		{"sealed clashes", "name = \"x\"\nprofiles = [\"debug\"]\ndirs = [\"d::/s\"]\n[sealed]\nmount = \"/s\"\n", errcode.ManifestInvalid, "also mounted by dirs"},
		{"sealed size", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\nmax_size = \"2GiB\"\n", errcode.ManifestInvalid, "ampoule.toml:5: sealed.max_size"},
		{"sealed zero size", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\nmax_size = 0\n", errcode.ManifestInvalid, "sealed.max_size: 0 bytes is out of range"},
		{"sealed key source", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\nkey = \"hsm\"\n", errcode.ManifestInvalid, "ampoule.toml:5: sealed.key: \"hsm\" is not a key source"},
		{"sealed broker without broker", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\nkey = \"broker\"\n", errcode.ManifestInvalid, "sealed.key: \"broker\" needs a [broker]"},
		{"broker url", "name = \"x\"\nprofiles = [\"debug\"]\n[broker]\nurl = \"ftp://b\"\nkey = \"" + strings.Repeat("ab", 32) + "\"\n", errcode.ManifestInvalid, "ampoule.toml:4: broker.url"},
		{"broker url without host", "name = \"x\"\nprofiles = [\"debug\"]\n[broker]\nurl = \"https://\"\nkey = \"" + strings.Repeat("ab", 32) + "\"\n", errcode.ManifestInvalid, "broker.url"},
		{"broker key", "name = \"x\"\nprofiles = [\"debug\"]\n[broker]\nurl = \"https://b\"\nkey = \"abcd\"\n", errcode.ManifestInvalid, "ampoule.toml:5: broker.key"},
		{"broker without key", "name = \"x\"\nprofiles = [\"debug\"]\n[broker]\nurl = \"https://b\"\n", errcode.ManifestInvalid, "broker.key: is required"},
		{"bad stdin", "name = \"x\"\nprofiles = [\"debug\"]\nstdin = \"tty\"\n", errcode.ManifestInvalid, "ampoule.toml:3: stdin: \"tty\" is not a stdin"},
		{"stdin type", "name = \"x\"\nprofiles = [\"debug\"]\nstdin = true\n", errcode.ManifestInvalid, "ampoule.toml:3: stdin"},
		{"sealed unknown key", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\nhost = \"/tmp\"\n", errcode.ManifestInvalid, "ampoule.toml:5: sealed.host: unknown key"},
		{"accept_from short", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\naccept_from = [\"" + strings.Repeat("a1", 32) + "\"]\n", errcode.ManifestInvalid, "ampoule.toml:5: sealed.accept_from[0]: \"" + strings.Repeat("a1", 32) + "\" is not a measurement"},
		{"accept_from not hex", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\naccept_from = [\"" + strings.Repeat("g1", 48) + "\"]\n", errcode.ManifestInvalid, "sealed.accept_from[0]: \"g1g1"},
		{"accept_from twice", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\naccept_from = [\"" + strings.Repeat("a1", 48) + "\", \"" + strings.Repeat("A1", 48) + "\"]\n", errcode.ManifestInvalid, "sealed.accept_from[1]: " + strings.Repeat("A1", 48) + " appears twice"},
		{"accept_from type", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\naccept_from = \"" + strings.Repeat("a1", 48) + "\"\n", errcode.ManifestInvalid, "ampoule.toml"},
		{"hand_on_key short", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\nhand_on_key = \"abcd\"\n", errcode.ManifestInvalid, "ampoule.toml:5: sealed.hand_on_key: \"abcd\" is not an Ed25519 public key"},
		{"hand_on_key with broker", "name = \"x\"\nprofiles = [\"debug\"]\n[broker]\nurl = \"https://b\"\nkey = \"" + strings.Repeat("ab", 32) + "\"\n[sealed]\nmount = \"/s\"\nkey = \"broker\"\nhand_on_key = \"" + strings.Repeat("cd", 32) + "\"\n", errcode.ManifestInvalid, "sealed.hand_on_key: is for key = \"tee\""},
		{"accept_from too many", "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\naccept_from = [" + strings.Repeat("\"x\", ", MaxAcceptFrom) + "\"x\"]\n", errcode.ManifestInvalid, "sealed.accept_from: has 65 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest("ampoule.toml", []byte(tc.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			if got := codeOf(err); got != tc.code {
				t.Errorf("code = %v, want %v (%v)", got, tc.code, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q lacks %q", err.Error(), tc.want)
			}
			var e *errcode.Error
			if errors.As(err, &e) && e.Hint() == "" {
				t.Errorf("no hint for %v", err)
			}
		})
	}
}

func bundle(t *testing.T, manifest string, module []byte) *Bundle {
	t.Helper()
	b, err := FromFS(fstest.MapFS{
		ManifestName:  {Data: []byte(manifest)},
		DefaultModule: {Data: module},
	}, "b")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMeasureIsDeterministic(t *testing.T) {
	a := Measure(bundle(t, baseManifest, minimalModule), "debug")
	b := Measure(bundle(t, baseManifest, minimalModule), "debug")
	if a != b {
		t.Fatal("the same bundle measured twice differs")
	}
}

// TestMeasureGolden pins the measurement construction against a value
// computed independently (Python's hashlib over the documented layout).
func TestMeasureGolden(t *testing.T) {
	b := bundle(t, "name = \"x\"\nprofiles = [\"debug\"]\n", minimalModule)
	wantCanonical := `{"args":[],"dirs":[],"env":{},"limits":{"file_output_bytes":1073741824,"memory_bytes":268435456,"open_files":256,"output_bytes":67108864,"wall_time_ns":300000000000},"log_recipient":"","module":"module.wasm","name":"x","profiles":["debug"],"version":""}`
	if got := string(b.Manifest.Canonical()); got != wantCanonical {
		t.Fatalf("canonical manifest =\n%s\nwant\n%s", got, wantCanonical)
	}
	const want = "d621fe80bd3357e0f7d0a4a5e200e1c65dc83dfac50df9ba26537054bdf94b4fe245b2640ab538b06b974ed48e4457b5"
	if got := Measure(b, "debug").String(); got != want {
		t.Fatalf("measurement = %s, want %s", got, want)
	}
}

// TestStdinKey: stdin is left out of the canonical form when the manifest
// does not say, so that older measurements stand; when it says, it is
// measured and decides every profile; unsaid, only debug reads the host's.
func TestStdinKey(t *testing.T) {
	debug, _ := profiles.Get("debug")
	staging, _ := profiles.Get("staging")
	production, _ := profiles.Get("production")
	for _, tc := range []struct {
		line                 string
		canonical            string
		debug, staging, prod bool
	}{
		{"", "", true, false, false},
		{"stdin = \"host\"\n", `,"stdin":"host",`, true, true, true},
		{"stdin = \"none\"\n", `,"stdin":"none",`, false, false, false},
	} {
		m := bundle(t, "name = \"x\"\nprofiles = [\"debug\"]\n"+tc.line, minimalModule).Manifest
		c := string(m.Canonical())
		if tc.canonical == "" && strings.Contains(c, "stdin") || tc.canonical != "" && !strings.Contains(c, tc.canonical) {
			t.Errorf("%q: canonical %s", tc.line, c)
		}
		if m.HostStdin(debug) != tc.debug || m.HostStdin(staging) != tc.staging || m.HostStdin(production) != tc.prod {
			t.Errorf("%q: host stdin under debug, staging, production = %v %v %v", tc.line, m.HostStdin(debug), m.HostStdin(staging), m.HostStdin(production))
		}
	}
}

func TestMeasureIgnoresLayout(t *testing.T) {
	base := Measure(bundle(t, baseManifest, minimalModule), "production")
	edited := strings.NewReplacer(
		"# A test manifest.\n", "",
		"name = \"hello\"", "name=\"hello\"    # the name",
		"[limits]", "\n\n[limits]  # limits follow",
		"[env]\nGREETING = \"hi\"\nLANG = \"C\"", "[env]\nLANG = 'C'\nGREETING = \"hi\"",
		"output = 1048576", "output = \"1MiB\"",
	).Replace(baseManifest)
	if edited == baseManifest {
		t.Fatal("the edit changed nothing")
	}
	if got := Measure(bundle(t, edited, minimalModule), "production"); got != base {
		t.Errorf("comment, whitespace, order or unit edits changed the measurement:\n%s", edited)
	}
	inline := "name = \"hello\"\nversion = \"1.0.0\"\nargs = [\"--greet\", \"world\"]\ndirs = [\"data::/data\", \"out::/out::rw\"]\n" +
		"profiles = [\"debug\", \"staging\", \"production\"]\nlog_recipient = \"alog1abababababababababababababababababababababababababababababababab\"\nenv = { GREETING = \"hi\", LANG = \"C\" }\n" +
		"limits = { memory = 67108864, wall_time = \"30s\", output = \"1MiB\", open_files = 16, file_output = 10485760 }\n"
	if got := Measure(bundle(t, inline, minimalModule), "production"); got != base {
		t.Error("inline tables changed the measurement")
	}
}

func TestMeasureChangesWithEveryField(t *testing.T) {
	base := Measure(bundle(t, baseManifest, minimalModule), "debug")
	seen := map[Measurement]string{base: "base"}
	for _, tc := range []struct{ name, from, to string }{
		{"name", `name = "hello"`, `name = "hello2"`},
		{"version", `version = "1.0.0"`, `version = "1.0.1"`},
		{"module", `name = "hello"`, "name = \"hello\"\nmodule = \"other.wasm\""},
		{"arg value", `"--greet", "world"`, `"--greet", "World"`},
		{"arg order", `"--greet", "world"`, `"world", "--greet"`},
		{"arg added", `"--greet", "world"`, `"--greet", "world", ""`},
		{"env value", `GREETING = "hi"`, `GREETING = "hello"`},
		{"env added", `LANG = "C"`, "LANG = \"C\"\nTZ = \"UTC\""},
		{"dir host", `"data::/data"`, `"data2::/data"`},
		{"dir guest", `"data::/data"`, `"data::/data2"`},
		{"dir mode", `"data::/data"`, `"data::/data::rw"`},
		{"dir order", `"data::/data", "out::/out::rw"`, `"out::/out::rw", "data::/data"`},
		{"profiles", `profiles = ["debug", "staging", "production"]`, `profiles = ["debug", "staging"]`},
		{"memory", `memory = "64MiB"`, `memory = "65MiB"`},
		{"wall time", `wall_time = "30s"`, `wall_time = "31s"`},
		{"output", `output = 1048576`, `output = 1048577`},
		{"log recipient", `log_recipient = "alog1abab`, `log_recipient = "alog1abac`},
		{"open files", `open_files = 16`, `open_files = 17`},
		{"file output", `file_output = "10MiB"`, `file_output = "11MiB"`},
		{"sealed mount", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[sealed]\nmount = \"/sealed\""},
		{"sealed path", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[sealed]\nmount = \"/state\""},
		{"sealed size", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[sealed]\nmount = \"/sealed\"\nmax_size = \"1MiB\""},
		{"broker", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[broker]\nurl = \"https://b\"\nkey = \"" + strings.Repeat("ab", 32) + "\""},
		{"broker key", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[broker]\nurl = \"https://b\"\nkey = \"" + strings.Repeat("ac", 32) + "\""},
		{"stdin host", `name = "hello"`, "name = \"hello\"\nstdin = \"host\""},
		{"stdin none", `name = "hello"`, "name = \"hello\"\nstdin = \"none\""},
		{"secret added", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[broker]\nurl = \"https://b\"\nkey = \"" + strings.Repeat("ab", 32) + "\"\n[secrets]\napi-key = \"default/tenant/api-key\""},
		{"secret path", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[broker]\nurl = \"https://b\"\nkey = \"" + strings.Repeat("ab", 32) + "\"\n[secrets]\napi-key = \"default/tenant/api-key2\""},
		{"secret name", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[broker]\nurl = \"https://b\"\nkey = \"" + strings.Repeat("ab", 32) + "\"\n[secrets]\ntoken = \"default/tenant/api-key\""},
		{"sealed accept_from", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[sealed]\nmount = \"/sealed\"\naccept_from = [\"" + strings.Repeat("a1", 48) + "\"]"},
		{"sealed accept_from other", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[sealed]\nmount = \"/sealed\"\naccept_from = [\"" + strings.Repeat("a2", 48) + "\"]"},
		{"sealed hand_on_key", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[sealed]\nmount = \"/sealed\"\nhand_on_key = \"" + strings.Repeat("cd", 32) + "\""},
		{"sealed key from broker", `file_output = "10MiB"`, "file_output = \"10MiB\"\n[broker]\nurl = \"https://b\"\nkey = \"" + strings.Repeat("ab", 32) + "\"\n[sealed]\nmount = \"/sealed\"\nkey = \"broker\""},
	} {
		doc := strings.Replace(baseManifest, tc.from, tc.to, 1)
		if doc == baseManifest {
			t.Fatalf("%s: edit did nothing", tc.name)
		}
		mod := minimalModule
		fsys := fstest.MapFS{ManifestName: {Data: []byte(doc)}, DefaultModule: {Data: mod}, "other.wasm": {Data: mod}}
		b, err := FromFS(fsys, "b")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		m := Measure(b, "debug")
		if prev, dup := seen[m]; dup {
			t.Errorf("%s: measurement equals %s's", tc.name, prev)
		}
		seen[m] = tc.name
	}
	// The module's bytes and the profile.
	other := append(append([]byte{}, minimalModule...), 0x00, 0x00) // a custom section would do; any change must count
	if Measure(bundle(t, baseManifest, other), "debug") == base {
		t.Error("changing the module did not change the measurement")
	}
	for _, p := range []string{"staging", "production"} {
		if Measure(bundle(t, baseManifest, minimalModule), p) == base {
			t.Errorf("profile %s measures like debug", p)
		}
	}
}

func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: e.typ}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
			h.Linkname = "elsewhere"
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type tarEntry struct {
	name string
	data []byte
	typ  byte
}

func TestTarBundle(t *testing.T) {
	manifest := []byte(baseManifest)
	good := makeTar(t, tarEntry{name: "./", typ: tar.TypeDir}, tarEntry{name: "./module.wasm", data: minimalModule}, tarEntry{name: "./ampoule.toml", data: manifest}, tarEntry{name: "src/main.go", data: []byte("package main")})
	b, err := FromTar(bytes.NewReader(good), "b.tar")
	if err != nil {
		t.Fatal(err)
	}
	if Measure(b, "debug") != Measure(bundle(t, baseManifest, minimalModule), "debug") {
		t.Error("a tar bundle measures differently from the same directory bundle")
	}

	for _, tc := range []struct {
		name string
		data []byte
		code errcode.Code
	}{
		{"truncated", good[:700], errcode.BundleMalformed},
		{"garbage", []byte("this is not a tar file at all, not even close............................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"), errcode.BundleMalformed},
		{"no manifest", makeTar(t, tarEntry{name: "module.wasm", data: minimalModule}), errcode.ManifestMissing},
		{"no module", makeTar(t, tarEntry{name: "ampoule.toml", data: manifest}), errcode.ModuleMissing},
		{"nested only", makeTar(t, tarEntry{name: "x/ampoule.toml", data: manifest}, tarEntry{name: "x/module.wasm", data: minimalModule}), errcode.ManifestMissing},
		{"duplicate manifest", makeTar(t, tarEntry{name: "ampoule.toml", data: manifest}, tarEntry{name: "./ampoule.toml", data: manifest}, tarEntry{name: "module.wasm", data: minimalModule}), errcode.BundleMalformed},
		{"symlinked module", makeTar(t, tarEntry{name: "ampoule.toml", data: manifest}, tarEntry{name: "module.wasm", typ: tar.TypeSymlink}), errcode.BundleMalformed},
		{"hardlinked manifest", makeTar(t, tarEntry{name: "ampoule.toml", typ: tar.TypeLink}, tarEntry{name: "module.wasm", data: minimalModule}), errcode.BundleMalformed},
		{"not wasm", makeTar(t, tarEntry{name: "ampoule.toml", data: manifest}, tarEntry{name: "module.wasm", data: []byte("#!/bin/sh\necho hi\n")}), errcode.ModuleNotWasm},
		{"component", makeTar(t, tarEntry{name: "ampoule.toml", data: manifest}, tarEntry{name: "module.wasm", data: []byte{0, 'a', 's', 'm', 0x0d, 0, 1, 0}}), errcode.ModuleNotWasm},
		{"bad manifest", makeTar(t, tarEntry{name: "ampoule.toml", data: []byte("name = 1")}, tarEntry{name: "module.wasm", data: minimalModule}), errcode.ManifestInvalid},
		{"empty", nil, errcode.ManifestMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromTar(bytes.NewReader(tc.data), "b.tar")
			if got := codeOf(err); got != tc.code {
				t.Errorf("code = %v, want %v (%v)", got, tc.code, err)
			}
		})
	}
}

func TestTarTooLarge(t *testing.T) {
	// A header claiming a module beyond the limit is refused before reading it.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "module.wasm", Mode: 0o644, Size: MaxModuleBytes + 1, Typeflag: tar.TypeReg})
	_, err := FromTar(bytes.NewReader(buf.Bytes()), "big.tar")
	if codeOf(err) != errcode.BundleTooLarge {
		t.Errorf("oversized entry: %v", err)
	}
	// An archive that never ends is cut off at the bound, not read forever.
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		chunk := make([]byte, 1<<20)
		for i := 0; ; i++ {
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("junk/%d", i), Mode: 0o644, Size: int64(len(chunk)), Typeflag: tar.TypeReg}); err != nil {
				return
			}
			if _, err := tw.Write(chunk); err != nil {
				return
			}
		}
	}()
	_, err = FromTar(pr, "endless.tar")
	pr.Close()
	if c := codeOf(err); c != errcode.BundleTooLarge {
		t.Errorf("endless archive: %v", err)
	}
}

func TestDirBundleErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
		code errcode.Code
	}{
		{"no manifest", fstest.MapFS{DefaultModule: {Data: minimalModule}}, errcode.ManifestMissing},
		{"no module", fstest.MapFS{ManifestName: {Data: []byte(baseManifest)}}, errcode.ModuleMissing},
		{"manifest is a dir", fstest.MapFS{ManifestName + "/x": {Data: nil}, DefaultModule: {Data: minimalModule}}, errcode.BundleMalformed},
		{"empty module", fstest.MapFS{ManifestName: {Data: []byte(baseManifest)}, DefaultModule: {Data: nil}}, errcode.ModuleNotWasm},
		{"truncated module", fstest.MapFS{ManifestName: {Data: []byte(baseManifest)}, DefaultModule: {Data: minimalModule[:5]}}, errcode.ModuleNotWasm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromFS(tc.fsys, "b")
			if got := codeOf(err); got != tc.code {
				t.Errorf("code = %v, want %v (%v)", got, tc.code, err)
			}
		})
	}
}

func TestFromModule(t *testing.T) {
	b, err := FromModule(minimalModule, "dir/My Tool.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if !b.Generated || b.Manifest.Name != "my_tool" || !b.Manifest.AllowsProfile("debug") || b.Manifest.AllowsProfile("staging") {
		t.Errorf("generated manifest = %+v", b.Manifest)
	}
	if _, err := FromModule([]byte("MZ\x90\x00"), "x.exe"); codeOf(err) != errcode.ModuleNotWasm {
		t.Errorf("non-wasm: %v", err)
	}
}

// TestUnknownKeyHints: an unknown key's hint says where a key of another
// table belongs (a top-level key appended after a [table] lands in it) and
// which key a misspelled one is nearest, else lists every key.
func TestUnknownKeyHints(t *testing.T) {
	const head = "name = \"x\"\nprofiles = [\"debug\"]\n"
	for _, c := range []struct {
		name, manifest, hint string
	}{
		{"a top-level key appended after [limits]", head + "[limits]\nmemory = \"1MiB\"\nlog_recipient = \"alog1\"\n", "log_recipient belongs at the top level, above the first [table]: a key after a [limits] header is in that table"},
		{"a limit at the top level", head + "wall_time = \"1s\"\n", "wall_time belongs in the [limits] table"},
		{"a sealed key under [broker]", head + "[broker]\nmax_size = 1\n", "max_size belongs in the [sealed] table"},
		{"a misspelled top-level key", "name = \"x\"\nprofile = [\"debug\"]\n", "did you mean profiles? "},
		{"a misspelled table", head + "[limit]\nmemory = 1\n", "did you mean limits? "},
		{"a misspelled limit", head + "[limits]\nwall_tmie = \"1s\"\n", "did you mean wall_time? "},
		{"nothing near", head + "colour = 1\n", "the keys are name, version"},
	} {
		_, err := ParseManifest("ampoule.toml", []byte(c.manifest))
		e := errcode.From(err)
		if err == nil || e.Code != errcode.ManifestInvalid || !strings.HasPrefix(e.Hint(), c.hint) {
			t.Errorf("%s: %v, hint %q; want one starting %q", c.name, err, e.Hint(), c.hint)
		}
	}
}

// TestAcceptFrom: [sealed] accept_from (and hand_on_key) is read in its order, in any case
// of hex, and written into the canonical form in lower case; a manifest
// without it measures as it did before it came.
func TestAcceptFrom(t *testing.T) {
	a, b := strings.Repeat("a1", 48), strings.Repeat("0b", 48)
	m := mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\naccept_from = [\""+strings.ToUpper(a)+"\", \""+b+"\"]\n")
	if len(m.Sealed.AcceptFrom) != 2 || m.Sealed.AcceptFrom[0].String() != a || m.Sealed.AcceptFrom[1].String() != b {
		t.Fatalf("accept_from = %v", m.Sealed.AcceptFrom)
	}
	if got := string(m.Canonical()); !strings.Contains(got, `"sealed":{"accept_from":["`+a+`","`+b+`"],"guest":"/s"`) {
		t.Errorf("canonical form lacks accept_from: %s", got)
	}
	m = mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\naccept_from = []\n")
	if got := string(m.Canonical()); strings.Contains(got, "accept_from") || strings.Contains(got, "hand_on_key") {
		t.Errorf("an empty accept_from, or an unset hand_on_key, is in the canonical form: %s", got)
	}
	k := strings.Repeat("cd", 32)
	m = mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/s\"\nhand_on_key = \""+strings.ToUpper(k)+"\"\n")
	if hex.EncodeToString(m.Sealed.HandOnKey) != k || !strings.Contains(string(m.Canonical()), `"guest":"/s","hand_on_key":"`+k+`","key":"tee"`) {
		t.Errorf("hand_on_key %x, canonical %s", m.Sealed.HandOnKey, m.Canonical())
	}
}
