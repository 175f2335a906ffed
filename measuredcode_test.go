package ampoule_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/tee"
)

// TestMeasuredCode: code compiled ahead by sandbox.Precompile, given as
// Config.MeasuredCode (a VM's initramfs, measured with the image), is what
// a staging run executes, a cache hit its log records, although staging
// refuses the host's unauthenticated disk cache; a directory on the disk,
// or one that others may write, is refused (E5002) before anything runs.
func TestMeasuredCode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: measured code is root's alone, as in a VM's initramfs")
	}
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = [\"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	module, err := os.ReadFile(filepath.Join(bundle, "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	shm, err := os.MkdirTemp("/dev/shm", "ampoule-measured-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	code := filepath.Join(shm, "code")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := sandbox.Precompile(exe, module, 1024, code, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	simKey := filepath.Join(t.TempDir(), "sim.key")
	run := func(dir string) (string, error) {
		var sink bufferSink
		_, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
			Profile: "staging", Backend: tee.KindSim, SimKey: simKey, MeasuredCode: dir,
			LogSink: func() (io.WriteCloser, error) { return &sink, nil },
		})
		if err != nil {
			return "", err
		}
		r, err := ampoule.OpenLog(&sink, id, ampoule.LogCheck{})
		if err != nil {
			t.Fatal(err)
		}
		rt, out := logText(t, r)
		if out != "hello from a tiny module\n" {
			t.Errorf("the workload wrote %q", out)
		}
		return rt, nil
	}
	rt, err := run(code)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rt, "cache=hit") {
		t.Errorf("the run did not execute the code compiled ahead:\n%s", rt)
	}
	// An empty directory: the run compiles (a miss), and still runs.
	empty := filepath.Join(shm, "empty")
	os.Mkdir(empty, 0o700)
	if rt, err := run(empty); err != nil || !strings.Contains(rt, "cache=miss") {
		t.Errorf("an empty measured-code directory: %v\n%s", err, rt)
	}

	onDisk := t.TempDir()
	os.Chmod(onDisk, 0o700)
	open := filepath.Join(shm, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o777)
	for name, dir := range map[string]string{"on the disk": onDisk, "writable by others": open, "missing": filepath.Join(shm, "none")} {
		if _, err := run(dir); errcode.From(err).Code != errcode.CacheUnavailable {
			t.Errorf("measured code %s: %v, want E5002", name, err)
		}
	}
}
