package ampoule_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// compiles records Config.Compiling's calls.
type compiles struct {
	mu      sync.Mutex
	started []string
	ended   int
}

func (c *compiles) hook(module string, size int) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = append(c.started, module+" "+strconv.Itoa(size))
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.ended++
	}
}

// TestCompilingBracketsTheCompile: Config.Compiling is called once, with
// the module's file name and size, as the runner compiles, and the
// function it returns once, whether the module compiled or the runner
// refused it; a run that ends before any runner starts calls neither. The
// runtime's log says how the cache served the module.
func TestCompilingBracketsTheCompile(t *testing.T) {
	module, err := os.ReadFile(filepath.Join("testdata", "tiny", "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	var c compiles
	var stderr testwasm.SyncBuffer
	_, err = ampoule.Run(context.Background(), "testdata/tiny", ampoule.Config{
		Profile: "debug", NoCache: true, Stderr: &stderr, LogLevel: hclog.Info, Compiling: c.hook,
		SimKey: filepath.Join(t.TempDir(), "sim.key"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.started, ",") != "module.wasm "+strconv.Itoa(len(module)) || c.ended != 1 {
		t.Errorf("a run that compiles: started %q, ended %d times", c.started, c.ended)
	}
	if !strings.Contains(stderr.String(), "launch: compiled: module=module.wasm bytes="+strconv.Itoa(len(module))+" cache=off") {
		t.Errorf("the runtime's log: %q", stderr.String())
	}

	// A module the runner refuses to compile: the bracket still closes.
	bad := testwasm.CopyBundle(t, "testdata/tiny", "name = \"bad\"\nprofiles = [\"debug\"]\n")
	if err := os.WriteFile(filepath.Join(bad, "module.wasm"), []byte("\x00asm\x01\x00\x00\x00\x01\xff\xff\xff"), 0o644); err != nil {
		t.Fatal(err)
	}
	c = compiles{}
	_, err = ampoule.Run(context.Background(), bad, ampoule.Config{Profile: "debug", NoCache: true, Compiling: c.hook, SimKey: filepath.Join(t.TempDir(), "sim.key")})
	if err == nil || len(c.started) != 1 || c.ended != 1 {
		t.Errorf("a module refused: %v, started %q, ended %d times", err, c.started, c.ended)
	}

	c = compiles{}
	_, err = ampoule.Run(context.Background(), filepath.Join(t.TempDir(), "missing"), ampoule.Config{Profile: "debug", Compiling: c.hook})
	if errcode.From(err).Code != errcode.BundleNotFound || len(c.started) != 0 || c.ended != 0 {
		t.Errorf("no bundle: %v, started %q, ended %d times", err, c.started, c.ended)
	}
}
