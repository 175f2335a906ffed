package ampoule_test

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
)

// TestStuckLogSinkEndsTheRun: a log sink that takes the header and then
// never reads again (a Unix socket whose reader stops) costs the run the
// records the sink could not take, counted, and never the run's end: the
// run ends with its own outcome and the sink's warning.
func TestStuckLogSinkEndsTheRun(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	module, err := os.ReadFile(filepath.Join(testwasm.Root(t), "wasm-examples", "hostile", "stdout-flood.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := "name = \"flood\"\nprofiles = [\"staging\"]\nlog_recipient = \"" + id.Recipient().String() + "\"\n[limits]\noutput = \"1MiB\"\nwall_time = \"30s\"\n"
	if err := os.WriteFile(filepath.Join(dir, "ampoule.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "log.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c // held open, never read
		}
	}()
	defer func() {
		select {
		case c := <-held:
			c.Close()
		default:
		}
	}()
	var warnings strings.Builder
	done := make(chan error, 1)
	go func() {
		_, err := ampoule.Run(context.Background(), dir, ampoule.Config{
			Profile: "staging", Backend: tee.KindSim, SimKey: filepath.Join(t.TempDir(), "sim.key"), NoCache: true,
			Stdout: io.Discard, Stderr: io.Discard, Warnings: &warnings,
			LogSink: func() (io.WriteCloser, error) { return net.Dial("unix", sock) },
		})
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		t.Fatal("the run never ended: it waits for a sink that does not read")
	}
	if c := errcode.From(err).Code; c != errcode.OutputLimit {
		t.Errorf("the run's error %v (code %s), want %s", err, c, errcode.OutputLimit)
	}
	if !strings.Contains(warnings.String(), "the log sink failed") {
		t.Errorf("the host was not told the log may be incomplete: %q", warnings.String())
	}
}
