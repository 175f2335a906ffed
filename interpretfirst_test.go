package ampoule_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
)

// TestInterpretFirstThroughTheRunner: with InterpretFirst, a staging run
// whose module no run has compiled is interpreted while its code is
// compiled into the authenticated cache; the next run in the same VM, and
// one in a new VM from the disk tier, start from the compiled code. The
// workload's output is the same each time and the host is told nothing.
func TestInterpretFirstThroughTheRunner(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = [\"debug\", \"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
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
	const want = "hello from a tiny module\n"
	expect := func(step, in string) {
		t.Helper()
		var sink bufferSink
		var warnings bytes.Buffer
		if _, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
			Profile: "staging", Backend: tee.KindSim, SimKey: simKey, CacheDir: disk, CodeMemory: memory, Warnings: &warnings,
			LogSink: func() (io.WriteCloser, error) { return &sink, nil }, InterpretFirst: true,
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(warnings.String(), "interpret") || strings.Contains(warnings.String(), "cache") {
			t.Errorf("%s: the host was told %q", step, warnings.String())
		}
		r, err := ampoule.OpenLog(&sink, id, ampoule.LogCheck{})
		if err != nil {
			t.Fatal(err)
		}
		rt, out := logText(t, r)
		if out != want {
			t.Errorf("%s: the workload wrote %q", step, out)
		}
		if !strings.Contains(rt, in) {
			t.Errorf("%s: the log does not say %q:\n%s", step, in, rt)
		}
	}
	newVM()
	expect("first run", "cache=interpreted")
	expect("same VM", "cache=hit")
	newVM()
	expect("new VM", "cache=hit")

	// Under debug, through the runner, with the disk cache.
	cache := t.TempDir()
	for i, in := range []string{"interpreted", "hit"} {
		var stdout, stderr testwasm.SyncBuffer
		if _, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
			Profile: "debug", Backend: tee.KindSim, SimKey: simKey, CacheDir: cache, InterpretFirst: true,
			Stdout: &stdout, Stderr: &stderr, LogLevel: hclog.Info, // its records, to stderr
		}); err != nil {
			t.Fatal(err)
		}
		if stdout.String() != want {
			t.Errorf("debug run %d wrote %q", i, stdout.String())
		}
		if !strings.Contains(stderr.String(), "cache="+in) {
			t.Errorf("debug run %d: stderr does not say cache=%s:\n%s", i, in, stderr.String())
		}
	}
}
