package testwasm

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestParseHeader: the directives are read from the header alone, each
// value checked, and anything malformed, unknown, repeated or missing
// refused rather than defaulted.
func TestParseHeader(t *testing.T) {
	good := []struct {
		src  string
		want Hostile
	}{
		{";; Grows memory.\n;; expect: E4001 memory-limit\n(module)\n", Hostile{Expect: errcode.MemoryLimit, DebugExit: -1}},
		{";; expect: ok\n;; dirs: rw\n;; memory: 1000000\n(module)", Hostile{Dirs: "rw", Memory: "1000000", DebugExit: -1}},
		{";; Note: a colon after a capitalised word, or later in a line, is prose\r\n;; expect: E2002 workload-exit\r\n;; debug-exit: 255\r\n;; memory: 64KiB\n(module)", Hostile{}},
		// Past the header a directive is module text, not a directive.
		{";; expect: ok\n(module)\n;; expect: E4001 memory-limit\n;; unknown: x\n", Hostile{DebugExit: -1}},
	}
	good[2].want = Hostile{Expect: errcode.WorkloadExit, DebugExit: 255, Memory: "64KiB"}
	for _, tc := range good {
		got, err := ParseHeader([]byte(tc.src))
		if err != nil || got.Expect != tc.want.Expect || got.Dirs != tc.want.Dirs || got.Memory != tc.want.Memory || got.DebugExit != tc.want.DebugExit {
			t.Errorf("ParseHeader(%q) = %+v, %v; want %+v", tc.src, got, err, tc.want)
		}
	}
	for _, src := range []string{
		"(module)",                                       // no header
		";; Grows memory.\n(module)",                     // no expect line
		"(module)\n;; expect: ok\n",                      // expect after the header
		" ;; expect: ok\n",                               // not a comment line's start
		";; expect: E4001\n",                             // no name
		";; expect: E4001 wall-time-limit\n",             // the wrong name
		";; expect: E3006 manifest-limit-refused\n",      // retired
		";; expect: E9999 nothing\n",                     // never registered
		";; expect: 4001 memory-limit\n",                 // no E
		";; expect:\n",                                   // empty
		";; expect: ok\n;; expect: ok\n",                 // twice
		";; expect: ok\n;; expcet: E4001 memory-limit\n", // misspelt directive
		";; expect: ok\n;; dirs: rwx\n",
		";; expect: ok\n;; dirs:\n",
		";; expect: ok\n;; memory: 0\n",
		";; expect: ok\n;; memory: 64 MiB\n",
		";; expect: ok\n;; memory: -1\n",
		";; expect: ok\n;; debug-exit: 256\n",
		";; expect: ok\n;; debug-exit: -1\n",
		";; expect: ok\n;; debug-exit: 07\n",
		";; expect: ok\n;; debug-exit: +7\n",
	} {
		if h, err := ParseHeader([]byte(src)); err == nil {
			t.Errorf("ParseHeader(%q) = %+v, want an error", src, h)
		}
	}
}

// corpusDirs are the directories whose .wat files 'make corpus' checks,
// read from the Makefile's CORPUS_WAT.
func corpusDirs(t *testing.T, root string) map[string]bool {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CORPUS_WAT := \$\(sort \$\(wildcard ([^)]*)\)\)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no CORPUS_WAT := $(sort $(wildcard ...)) line")
	}
	dirs := map[string]bool{}
	for _, g := range strings.Fields(string(m[1])) {
		dir, pattern := filepath.Split(g)
		if pattern != "*.wat" {
			t.Fatalf("CORPUS_WAT: %q is not DIR/*.wat", g)
		}
		dirs[filepath.Clean(dir)] = true
	}
	return dirs
}

// TestCorpusIsCommitted: every .wat the tests run (all but bench/wat's,
// which the bench assembles with its own counts) lies where 'make corpus'
// checks it and has its .wasm committed beside it; no .wasm there lacks its
// .wat; and every module of the hostile corpus has its expectation.
func TestCorpusIsCommitted(t *testing.T) {
	root := Root(t)
	dirs := corpusDirs(t, root)
	if !dirs[HostileDir] {
		t.Errorf("CORPUS_WAT leaves out %s", HostileDir)
	}
	wats := 0
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") || rel == "bench/wat" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".wat":
			wats++
			if !dirs[filepath.Dir(rel)] {
				t.Errorf("%s: its directory is not in the Makefile's CORPUS_WAT, so 'make corpus' does not check it", rel)
			}
			b, err := os.ReadFile(strings.TrimSuffix(p, ".wat") + ".wasm")
			if err != nil || !bytes.HasPrefix(b, []byte("\x00asm\x01\x00\x00\x00")) {
				t.Errorf("%s: no WebAssembly binary committed beside it (%v); run 'make corpus-write'", rel, err)
			}
		case ".wasm":
			if d.Name() == "module.wasm" && strings.HasPrefix(rel, "wasm-examples/") {
				return nil // built by 'make examples'
			}
			if _, err := os.Stat(strings.TrimSuffix(p, ".wasm") + ".wat"); err != nil {
				t.Errorf("%s: no .wat beside it to make it from", rel)
			}
		}
		return nil
	})
	if wats < 30 {
		t.Errorf("only %d .wat files found", wats)
	}
	corpus := HostileCorpus(t)
	expectations := map[bool]int{}
	names := map[string]bool{}
	for _, h := range corpus {
		expectations[h.Expect == 0]++
		names[h.Name] = true
	}
	if expectations[true] == 0 || expectations[false] == 0 {
		t.Errorf("the corpus's expectations are all alike: %v", expectations)
	}
	// The modules docs/threat-model.md cites as evidence are still there.
	doc, err := os.ReadFile(filepath.Join(root, "docs", "threat-model.md"))
	if err != nil {
		t.Fatal(err)
	}
	cited := 0
	for _, m := range regexp.MustCompile(`TestHostileCorpus \(([^)]*)\)`).FindAllSubmatch(doc, -1) {
		for _, n := range regexp.MustCompile("`([a-z0-9-]+)`").FindAllSubmatch(m[1], -1) {
			cited++
			if !names[string(n[1])] {
				t.Errorf("docs/threat-model.md cites the hostile module %s, which is not in %s", n[1], HostileDir)
			}
		}
	}
	if cited < 5 {
		t.Errorf("docs/threat-model.md cites only %d hostile modules", cited)
	}
}

// FuzzParseHeader: ParseHeader never panics, and what it accepts is what
// its doc promises: a registered code (or none), a known dirs value and an
// exit status in range.
func FuzzParseHeader(f *testing.F) {
	for _, h := range []string{
		";; expect: E4001 memory-limit\n;; memory: 64MiB\n(module)",
		";; expect: ok\n;; dirs: ro\n",
		";; expect: E2002 workload-exit\n;; debug-exit: 255\n",
	} {
		f.Add([]byte(h))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		h, err := ParseHeader(src)
		if err != nil {
			return
		}
		if h.Expect != 0 && !h.Expect.Registered() || h.Dirs != "" && h.Dirs != "ro" && h.Dirs != "rw" || h.DebugExit < -1 || h.DebugExit > 255 {
			t.Errorf("ParseHeader(%q) accepted %+v", src, h)
		}
		if !bytes.Contains(src, []byte(";; expect: ")) {
			t.Errorf("ParseHeader(%q) accepted a header with no expect line", src)
		}
	})
}
