package testwasm

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// HostileDir is the hostile-module corpus's directory under the module's
// root: NAME.wat, its source, and NAME.wasm, what wat2wasm makes of it,
// side by side ('make corpus' checks that they match).
const HostileDir = "wasm-examples/hostile"

// Hostile is one module of the hostile corpus: its committed binary and
// what its .wat's header says every profile must end it with.
type Hostile struct {
	// Name is the file name without .wat or .wasm.
	Name string
	// Expect is the code the run must end with; zero means the attack is
	// contained and the module exits 0 (the modules trap if it works).
	Expect errcode.Code
	// Dirs is "", "ro" or "rw": a preopen at fd 3, read-only or writable,
	// holding a file and links out of it.
	Dirs string
	// Memory is the manifest's limits.memory; "" means the corpus's default.
	Memory string
	// DebugExit is the exit status under debug, where the workload's own
	// passes through; -1 means the status of Expect's class.
	DebugExit int
	// Wasm is the committed binary.
	Wasm []byte
}

// The header's directives: ";; KEY: VALUE" lines among the comment lines
// that open a .wat. A comment line of that form with another key is refused,
// so a misspelt directive is never taken for prose.
var (
	directiveLine = regexp.MustCompile(`^;; ([a-z][a-z-]*):(?: (.*))?$`)
	expectValue   = regexp.MustCompile(`^E([0-9]{4}) ([a-z][a-z0-9-]*)$`)
	memoryValue   = regexp.MustCompile(`^[1-9][0-9]{0,12}(KiB|MiB|GiB)?$`)
)

// ParseHeader reads the directives in the header of a hostile module's
// source, the ";;" comment lines before its first other line:
//
//	;; expect: E4001 memory-limit   (required: the code and its name, or "ok")
//	;; dirs: ro                     (optional: "ro" or "rw")
//	;; memory: 64MiB                (optional: the manifest's limits.memory)
//	;; debug-exit: 255              (optional: 0 to 255)
//
// Each may appear once. It returns an error, never a partial result, for a
// missing expect line, an unknown or repeated directive, a code that is not
// registered or whose name is not the registry's, or a malformed value.
func ParseHeader(src []byte) (Hostile, error) {
	h := Hostile{DebugExit: -1}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if !strings.HasPrefix(line, ";;") {
			break
		}
		m := directiveLine.FindStringSubmatch(line)
		if m == nil {
			continue // prose
		}
		key, value := m[1], m[2]
		if seen[key] {
			return Hostile{}, fmt.Errorf("header: %s given twice", key)
		}
		seen[key] = true
		switch key {
		case "expect":
			if value == "ok" {
				break
			}
			v := expectValue.FindStringSubmatch(value)
			if v == nil {
				return Hostile{}, fmt.Errorf("header: expect %q is neither \"ok\" nor a code and its name, such as \"E4001 memory-limit\"", value)
			}
			n, _ := strconv.Atoi(v[1])
			c := errcode.Code(n)
			if !c.Registered() {
				return Hostile{}, fmt.Errorf("header: expect %q: E%s is not a registered code", value, v[1])
			}
			if c.Name() != v[2] {
				return Hostile{}, fmt.Errorf("header: expect %q: E%s is %s", value, v[1], c.Name())
			}
			h.Expect = c
		case "dirs":
			if value != "ro" && value != "rw" {
				return Hostile{}, fmt.Errorf("header: dirs %q is neither ro nor rw", value)
			}
			h.Dirs = value
		case "memory":
			if !memoryValue.MatchString(value) {
				return Hostile{}, fmt.Errorf("header: memory %q is not a size such as 64MiB or 1000000", value)
			}
			h.Memory = value
		case "debug-exit":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != value {
				return Hostile{}, fmt.Errorf("header: debug-exit %q is not a status from 0 to 255", value)
			}
			h.DebugExit = n
		default:
			return Hostile{}, fmt.Errorf("header: unknown directive %q", key)
		}
	}
	if !seen["expect"] {
		return Hostile{}, fmt.Errorf("header: no expect line")
	}
	return h, nil
}

// HostileCorpus returns every module of the corpus, sorted by name, each
// with its header's expectation and its committed binary. A module whose
// header does not parse, or whose .wasm is missing or not WebAssembly,
// fails the test: no module of the corpus goes untested.
func HostileCorpus(t testing.TB) []Hostile {
	t.Helper()
	dir := filepath.Join(Root(t), HostileDir)
	wats, err := filepath.Glob(filepath.Join(dir, "*.wat"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(wats)
	var out []Hostile
	for _, w := range wats {
		src, err := os.ReadFile(w)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(w), ".wat")
		h, err := ParseHeader(src)
		if err != nil {
			t.Fatalf("%s: %v", w, err)
		}
		h.Name = name
		h.Wasm = committedWasm(t, strings.TrimSuffix(w, ".wat")+".wasm")
		out = append(out, h)
	}
	if len(out) < 25 {
		t.Fatalf("only %d hostile modules found in %s", len(out), dir)
	}
	return out
}

// HostileModule returns the committed binary of the corpus's module NAME.
func HostileModule(t testing.TB, name string) []byte {
	t.Helper()
	return committedWasm(t, filepath.Join(Root(t), HostileDir, name+".wasm"))
}

// Committed returns the binary committed beside path, a .wat file: the
// same name ending in .wasm, which 'make corpus' checks wat2wasm makes of
// it. A missing or non-WebAssembly file fails the test.
func Committed(t testing.TB, path string) []byte {
	t.Helper()
	return committedWasm(t, strings.TrimSuffix(path, ".wat")+".wasm")
}

func committedWasm(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; the .wasm beside each .wat is committed ('make corpus-write' makes it with wat2wasm)", err)
	}
	if !bytes.HasPrefix(b, []byte("\x00asm\x01\x00\x00\x00")) {
		t.Fatalf("%s is not a WebAssembly 1.0 binary", path)
	}
	return b
}

// HostileBundle makes a bundle of the corpus module h with tight limits,
// allowed under debug, staging and production: the header's memory
// limit, or 16MiB; a 1 s wall time for the modules expected to reach it,
// 10 s for the others, so that a loaded machine running a deep recursion
// or a big allocation slowly does not end it at the wall time instead
// (seen at a load average of 20); and, if its header asks, a preopened
// directory holding a file and links out of it (abs -> /etc, rel -> the
// directory's parent).
func HostileBundle(t testing.TB, h Hostile) string {
	t.Helper()
	base := t.TempDir()
	bundle := filepath.Join(base, "bundle")
	os.MkdirAll(bundle, 0o755)
	if err := os.WriteFile(filepath.Join(bundle, "module.wasm"), h.Wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf("name = %q\nprofiles = [\"debug\", \"staging\", \"production\"]\n", h.Name)
	if h.Dirs != "" {
		data := filepath.Join(base, "data")
		os.MkdirAll(data, 0o755)
		os.WriteFile(filepath.Join(data, "inside.txt"), []byte("inside\n"), 0o644)
		os.WriteFile(filepath.Join(base, "outside.txt"), []byte("HOST FILE\n"), 0o644)
		os.Symlink("/etc", filepath.Join(data, "abs"))
		os.Symlink("..", filepath.Join(data, "rel"))
		mode := ""
		if h.Dirs == "rw" {
			mode = "::rw"
		}
		manifest += fmt.Sprintf("dirs = [%q]\n", data+"::/data"+mode)
	}
	memory := h.Memory
	if memory == "" {
		memory = "16MiB"
	}
	wall := "10s"
	if h.Expect == errcode.WallTimeLimit {
		wall = "1s"
	}
	manifest += "[limits]\nmemory = \"" + memory + "\"\nwall_time = \"" + wall + "\"\noutput = \"256KiB\"\nopen_files = 16\nfile_output = \"1MiB\"\n"
	if err := os.WriteFile(filepath.Join(bundle, "ampoule.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return bundle
}
