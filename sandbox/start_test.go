package sandbox

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// TestModuleWithoutStartIsRefused: a module with no _start () -> () (a
// library, a WASI reactor, a _start taking arguments) is refused with
// E1045 before anything runs, not instantiated and reported as a run
// that exited 0.
func TestModuleWithoutStartIsRefused(t *testing.T) {
	for name, want := range map[string]string{
		"no-start":          "exports no _start function",
		"reactor":           "it is a WASI reactor",
		"start-with-params": "_start has signature (i32)->(), not ()->()",
	} {
		mod := testwasm.Committed(t, filepath.Join("testdata", name+".wat"))
		started := false
		_, err := Run(context.Background(), Spec{Module: mod, Name: "x", MemoryPages: 16, WallTime: 10 * time.Second,
			BeforeStart: func() error { started = true; return nil }})
		if codeOf(err) != errcode.ModuleNoStart || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want E%d saying %q", name, err, errcode.ModuleNoStart, want)
		}
		if started {
			t.Errorf("%s: the run reached its start", name)
		}
	}
	// A module with a _start still runs.
	if _, err := Run(context.Background(), Spec{Module: testwasm.Assemble(testwasm.Spec{}), Name: "x", MemoryPages: 16, WallTime: 10 * time.Second}); err != nil {
		t.Errorf("a module with _start: %v", err)
	}
}

// TestReactorRunsItsEntry: a reactor with an entry runs _initialize, then
// the entry; an entry the module does not export, one of another
// signature, or one beside a command's _start is refused with E1045.
func TestReactorRunsItsEntry(t *testing.T) {
	run := func(name, entry string) (string, error) {
		var out bytes.Buffer
		_, err := Run(context.Background(), Spec{Module: testwasm.Committed(t, filepath.Join("testdata", name+".wat")), Name: "r",
			MemoryPages: 16, WallTime: 10 * time.Second, Entry: entry, Stdout: &out})
		return out.String(), err
	}
	if out, err := run("reactor-entry", "run"); err != nil || out != "initialized\n" {
		t.Errorf("the reactor's entry: %q, %v", out, err)
	}
	if _, err := run("reactor-entry", ""); codeOf(err) != errcode.ModuleNoStart || !strings.Contains(errcode.From(err).Hint(), `entry = "NAME"`) {
		t.Errorf("the reactor without an entry: %v", err)
	}
	for _, tc := range []struct{ module, entry, want string }{
		{"reactor-entry", "main", `the entry "main", which the module does not export`},
		{"no-start", "add", `the entry "add" has signature (i32,i32)->(i32), not ()->()`},
		{"start-with-params", "_start", "it is a WASI command"},
	} {
		if _, err := run(tc.module, tc.entry); codeOf(err) != errcode.ModuleNoStart || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with entry %q: %v; want E%d saying %q", tc.module, tc.entry, err, errcode.ModuleNoStart, tc.want)
		}
	}
}

// TestStartSectionRunsAfterBeforeStart: a module is instantiated before
// BeforeStart (so that a warm runner holds it instantiated) only when
// that runs none of its code. A start section's function runs only once
// BeforeStart has allowed it; a module without one is instantiated
// first, so that its failing instantiation ends the run before it.
func TestStartSectionRunsAfterBeforeStart(t *testing.T) {
	for _, tc := range []struct {
		path    string
		code    errcode.Code
		started bool
	}{
		{"../wasm-examples/hostile/trap-in-start.wat", errcode.WorkloadTrap, true},
		{"testdata/data-out-of-bounds.wat", errcode.WorkloadTrap, false},
	} {
		mod := testwasm.Committed(t, filepath.FromSlash(tc.path))
		if got := hasStartSection(mod); got != tc.started {
			t.Errorf("%s: hasStartSection %v, want %v", tc.path, got, tc.started)
		}
		started := false
		_, err := Run(context.Background(), Spec{Module: mod, Name: "x", MemoryPages: 16, WallTime: 10 * time.Second,
			BeforeStart: func() error { started = true; return nil }})
		if codeOf(err) != tc.code {
			t.Errorf("%s: %v; want E%d", tc.path, err, tc.code)
		}
		if started != tc.started {
			t.Errorf("%s: BeforeStart called %v, want %v", tc.path, started, tc.started)
		}
	}
}

// FuzzStartSection: hasStartSection never panics, agrees with inspect on
// every module inspect reads, and takes what it cannot read to have one.
func FuzzStartSection(f *testing.F) {
	f.Add(testwasm.Assemble(testwasm.Spec{}))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x08\x01\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := hasStartSection(b)
		s, err := inspect(b)
		if err == nil && got != s.start {
			t.Fatalf("hasStartSection %v, inspect saw a start section: %v", got, s.start)
		}
		if len(b) < 8 && !got {
			t.Fatalf("a module too short to read has no start section")
		}
	})
}
