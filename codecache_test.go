package ampoule_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
)

// TestCodeCacheUnderStaging runs tiny under staging through the real
// runner, as a host would see it across VM boots: the first run compiles
// and stores its code on the host's disk, authenticated; a run in a new
// VM (an empty memory tier) uses it; a run whose disk entry the host
// changed refuses it, compiles afresh, still runs, replaces the entry,
// and says so in the tenant's log, not to the host.
func TestCodeCacheUnderStaging(t *testing.T) {
	vm := newStagingVMs(t, "staging")
	newVM, expect := vm.newVM, func(step, in string) { t.Helper(); vm.expect(step, in, ampoule.Config{}) }
	disk := vm.disk
	newVM()
	expect("first run", "outcome=miss")
	entries, _ := filepath.Glob(filepath.Join(disk, "*.code"))
	if len(entries) != 1 {
		t.Fatalf("the disk tier holds %v after the first run", entries)
	}
	expect("same VM", "outcome=memory hit")
	newVM()
	expect("new VM", "outcome=disk hit, verified")

	data, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/3] ^= 0x20
	if err := os.WriteFile(entries[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	newVM()
	expect("tampered entry", "compilation cache entry refused")
	newVM()
	expect("after the replacement", "outcome=disk hit, verified")

	// A bundle whose measurement differs (another version) keys its
	// entries differently: the same module's entry is not its to use.
	vm.bundle = testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.1\"\nprofiles = [\"staging\"]\nlog_recipient = \""+vm.id.Recipient().String()+"\"\n")
	newVM()
	expect("another measurement", "compilation cache entry refused")
}

// stagingVMs runs the tiny bundle under staging through the real runner,
// as a host would see it across VM boots: one disk tier, and a fresh
// memory tier for each newVM.
type stagingVMs struct {
	t                    *testing.T
	id                   *logging.Identity
	bundle, simKey, disk string
	memory               string
}

// newStagingVMs makes the bundle, its manifest allowing profiles (names
// separated by commas); newVM makes each VM, the first too.
func newStagingVMs(t *testing.T, profiles string) *stagingVMs {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	quoted := `"` + strings.ReplaceAll(profiles, ",", `", "`) + `"`
	v := &stagingVMs{t: t, id: id, simKey: filepath.Join(t.TempDir(), "sim.key"), disk: t.TempDir()}
	v.bundle = testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = ["+quoted+"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	return v
}

// newVM gives the next run an empty memory tier, as a reboot does.
func (v *stagingVMs) newVM() {
	d, err := os.MkdirTemp("/dev/shm", "ampoule-vm-")
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { os.RemoveAll(d) })
	v.memory = filepath.Join(d, "code")
}

// expect runs the bundle under staging with extra's other settings and
// checks the workload's output, that the host was told nothing of the
// cache, and that the tenant's log's runtime messages say in.
func (v *stagingVMs) expect(step, in string, extra ampoule.Config) {
	v.t.Helper()
	var sink bufferSink
	var warnings bytes.Buffer
	c := extra
	c.Profile, c.Backend, c.SimKey, c.CacheDir, c.CodeMemory, c.Warnings = "staging", tee.KindSim, v.simKey, v.disk, v.memory, &warnings
	c.LogSink = func() (io.WriteCloser, error) { return &sink, nil }
	if _, err := ampoule.Run(context.Background(), v.bundle, c); err != nil {
		v.t.Fatal(err)
	}
	if w := warnings.String(); strings.Contains(w, "cache") || strings.Contains(w, "interpret") {
		v.t.Errorf("%s: the host was told %q", step, w)
	}
	r, err := ampoule.OpenLog(&sink, v.id, ampoule.LogCheck{})
	if err != nil {
		v.t.Fatal(err)
	}
	rt, out := logText(v.t, r)
	if out != "hello from a tiny module\n" {
		v.t.Errorf("%s: the workload wrote %q", step, out)
	}
	if !strings.Contains(rt, in) {
		v.t.Errorf("%s: the log does not say %q:\n%s", step, in, rt)
	}
}
