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
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = [\"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	simKey := filepath.Join(t.TempDir(), "sim.key")
	disk := t.TempDir()
	var memory string
	newVM := func() {
		d, err := os.MkdirTemp("/dev/shm", "ampoule-vm-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		memory = filepath.Join(d, "code")
	}
	// run returns the tenant's log's runtime messages and the workload's
	// output.
	run := func() (runtime, stdout string) {
		t.Helper()
		var sink bufferSink
		var warnings bytes.Buffer
		if _, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
			Profile: "staging", Backend: tee.KindSim, SimKey: simKey, CacheDir: disk, CodeMemory: memory, Warnings: &warnings,
			LogSink: func() (io.WriteCloser, error) { return &sink, nil },
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(warnings.String(), "cache") {
			t.Errorf("the host was told of the cache: %q", warnings.String())
		}
		r, err := ampoule.OpenLog(&sink, id, ampoule.LogCheck{})
		if err != nil {
			t.Fatal(err)
		}
		return logText(t, r)
	}
	const want = "hello from a tiny module\n"
	expect := func(step, in string) {
		t.Helper()
		rt, out := run()
		if out != want {
			t.Errorf("%s: the workload wrote %q", step, out)
		}
		if !strings.Contains(rt, in) {
			t.Errorf("%s: the log does not say %q:\n%s", step, in, rt)
		}
	}

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
	other := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.1\"\nprofiles = [\"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	bundle = other
	newVM()
	expect("another measurement", "compilation cache entry refused")
}
