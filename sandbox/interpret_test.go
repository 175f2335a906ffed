package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
)

// A first run interprets while the module compiles into the cache; Run
// returns only once the cache holds the code, so the next run is a hit
// and compiled; a run without InterpretFirst is unchanged.
func TestInterpretFirst(t *testing.T) {
	cache := t.TempDir()
	var served []string
	for i := 0; i < 2; i++ {
		s, stdout, _ := spec(t, "hello", "tenant")
		s.CacheDir, s.InterpretFirst = cache, true
		s.Compiled = func(c string) { served = append(served, c) }
		if _, err := Run(context.Background(), s); err != nil || !strings.Contains(stdout.String(), "Hello, tenant") {
			t.Fatalf("run %d: %v %q", i, err, stdout)
		}
		if i == 0 {
			// The compile beside the run has ended: wazero's code is there.
			if code, _ := filepath.Glob(filepath.Join(cache, "wazero-*", "*")); len(code) == 0 {
				t.Fatal("the interpreted run returned before the cache held the compiled code")
			}
			digest := moduleDigest(&s)
			if !hasCompiled(cache, digest) {
				t.Fatal("no compiled mark after the interpreted run")
			}
		}
	}
	if len(served) != 2 || served[0] != CacheInterpreted || served[1] != CacheHit {
		t.Fatalf("cache outcomes %q, want [interpreted hit]", served)
	}

	// A cache filled by a run without InterpretFirst (a supervised one has
	// the digest, so it marks its miss): the next InterpretFirst run is
	// compiled, from the cache.
	other := t.TempDir()
	s, _, _ := spec(t, "hello")
	s.CacheDir = other
	mod := s.Module
	s.ModuleDigest = func() [48]byte { return moduleDigest(&Spec{Module: mod}) }
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	s, _, _ = spec(t, "hello")
	s.CacheDir, s.InterpretFirst = other, true
	s.Compiled = func(c string) { served = append(served, c) }
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := served[len(served)-1]; got != CacheHit {
		t.Errorf("after a marked miss: %q, want hit", got)
	}

	// No cache: nothing to fill, so nothing is interpreted.
	s, _, _ = spec(t, "hello")
	s.CacheDir, s.InterpretFirst = "", true
	s.Compiled = func(c string) { served = append(served, c) }
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := served[len(served)-1]; got != CacheOff {
		t.Errorf("without a cache: %q, want off", got)
	}
}

// The interpreted run keeps every limit, and a module neither engine
// accepts is refused as before.
func TestInterpretFirstLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		tune func(*Spec)
		code errcode.Code
	}{
		{"memory", []string{"oom"}, nil, errcode.MemoryLimit},
		{"wall time sleeping", []string{"sleep"}, func(s *Spec) { s.WallTime = 300 * time.Millisecond }, errcode.WallTimeLimit},
		{"wall time spinning", []string{"spin"}, func(s *Spec) { s.WallTime = 300 * time.Millisecond; s.Preempt = true }, errcode.WallTimeLimit},
		{"output", []string{"flood"}, nil, errcode.OutputLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := spec(t, "crash", tc.args...)
			s.CacheDir, s.InterpretFirst = t.TempDir(), true
			var served string
			s.Compiled = func(c string) { served = c }
			if tc.tune != nil {
				tc.tune(&s)
			}
			_, err := Run(context.Background(), s)
			if codeOf(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
			if served != CacheInterpreted {
				t.Fatalf("served %q: the limit was not tested in the interpreter", served)
			}
		})
	}

	s, _, _ := spec(t, "hello")
	s.Module = append([]byte{}, s.Module[:len(s.Module)/2]...)
	s.CacheDir, s.InterpretFirst = t.TempDir(), true
	if _, err := Run(context.Background(), s); codeOf(err) != errcode.ModuleInvalid {
		t.Errorf("a truncated module: %v, want %v", err, errcode.ModuleInvalid)
	}
}

// A mark planted by the host only makes a run compile, as without
// InterpretFirst; a mark removed only makes it interpret once more.
func TestInterpretFirstMarkIsOnlyAHint(t *testing.T) {
	cache := t.TempDir()
	s, stdout, _ := spec(t, "hello")
	s.CacheDir, s.InterpretFirst = cache, true
	markCompiled(cache, moduleDigest(&s))
	var served string
	s.Compiled = func(c string) { served = c }
	if _, err := Run(context.Background(), s); err != nil || !strings.Contains(stdout.String(), "Hello") {
		t.Fatalf("%v %q", err, stdout)
	}
	if served != CacheMiss {
		t.Errorf("a planted mark: %q, want a compile (miss)", served)
	}
	if err := os.Remove(filepath.Join(cache, compiledMark(moduleDigest(&s)))); err != nil {
		t.Fatal(err)
	}
	s, _, _ = spec(t, "hello")
	s.CacheDir, s.InterpretFirst = cache, true
	s.Compiled = func(c string) { served = c }
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if served != CacheInterpreted {
		t.Errorf("a removed mark: %q, want interpreted", served)
	}
}
