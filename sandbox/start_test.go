package sandbox

import (
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
