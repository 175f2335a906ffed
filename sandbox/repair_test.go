package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cacheEntries are the code files wazero keeps in the cache dir (not its
// temporary files, nor the marks beside them).
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(dir, "wazero-*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".tmp") {
			code = append(code, f)
		}
	}
	return code
}

// raceShort is the race pass's -short run (make race), after the plain
// pass has run every case: a test whose cases each drive the same code
// with a different input runs one case per path there, since the
// detector needs each path run once, not each input, and an instrumented
// compile of a Go guest takes seconds.
func raceShort() bool { return raceEnabled && testing.Short() }

// TestTornCacheEntry: an entry of a host-controlled cache that was torn
// (truncated, or a byte of its code flipped, as a full disk, a crash or
// the host may leave it) is never executed and never fails the run: the
// module is compiled afresh, the entry is replaced by a whole one, and the
// run after that is a hit. Without the repair, wazero fails every compile
// of the module from then on with "compilationcache: ..." (E2005), and an
// interpreted first run never fills the cache.
func TestTornCacheEntry(t *testing.T) {
	// Each tear drives the same repair; the race pass takes one of them.
	tearsUnderRace := map[string]bool{"truncated": true}
	tears := map[string]func(b []byte) []byte{
		"truncated":   func(b []byte) []byte { return b[:len(b)/2] },
		"flipped":     func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b },
		"header-only": func(b []byte) []byte { return b[:12] },
	}
	for _, mode := range []string{"compiling", "interpret-first, marked", "interpret-first, unmarked"} {
		for name, tear := range tears {
			if mode != "compiling" && name != "truncated" {
				continue // each tear is wazero's to find, whichever way the run compiles
			}
			if raceShort() && !tearsUnderRace[name] {
				continue
			}
			t.Run(mode+"/"+name, func(t *testing.T) {
				cache := t.TempDir()
				run := func(step, want string) {
					t.Helper()
					s, stdout, _ := spec(t, "hello")
					s.CacheDir, s.InterpretFirst = cache, mode != "compiling"
					var served string
					s.Compiled = func(c string) { served = c }
					if _, err := Run(context.Background(), s); err != nil || !strings.Contains(stdout.String(), "Hello, world") {
						t.Fatalf("%s: %v %q", step, err, stdout)
					}
					if served != want {
						t.Errorf("%s: the cache served %q, want %q", step, served, want)
					}
				}
				first := CacheMiss
				if mode != "compiling" {
					first = CacheInterpreted
				}
				run("the first run", first)
				code := cacheEntries(t, cache)
				if len(code) != 1 {
					t.Fatalf("the cache holds %q, want one entry", code)
				}
				whole, err := os.ReadFile(code[0])
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(code[0], tear(bytes.Clone(whole)), 0o600); err != nil {
					t.Fatal(err)
				}
				again := CacheMiss
				if mode == "interpret-first, unmarked" {
					s, _, _ := spec(t, "hello")
					if err := os.Remove(filepath.Join(cache, compiledMark(moduleDigest(&s)))); err != nil {
						t.Fatal(err)
					}
					again = CacheInterpreted
				}
				run("the run after the tear", again)
				if code := cacheEntries(t, cache); len(code) != 1 {
					t.Fatalf("after the repair the cache holds %q, want one entry", code)
				} else if now, err := os.ReadFile(code[0]); err != nil || len(now) != len(whole) {
					t.Fatalf("the repaired entry has %d bytes (%v), the whole one %d", len(now), err, len(whole))
				}
				if left, _ := filepath.Glob(filepath.Join(cache, "repair-*")); len(left) > 0 {
					t.Errorf("the repair left %q", left)
				}
				run("the run after the repair", CacheHit)
			})
		}
	}
}
