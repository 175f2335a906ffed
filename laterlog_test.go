package ampoule_test

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/ampoule-run/ampoule/tee"
)

// children are the pids of this process's running children.
func children(t *testing.T) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		pids = append(pids, strings.Fields(string(data))...)
	}
	return pids
}

// TestLogFailsAfterRunnerStarted: a staging run without secrets or a
// sealed mount opens its log once its runner has started; when the log
// then fails to open, the run ends with the log's registered code before
// the workload starts, the runner is gone, and nothing the workload would
// have written reaches the host.
func TestLogFailsAfterRunnerStarted(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nprofiles = [\"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	var stdout, stderr, warnings bytes.Buffer
	var runnerAtOpen []string
	started := false
	_, err = ampoule.Run(context.Background(), bundle, ampoule.Config{
		Profile: "staging", Backend: tee.KindSim, SimKey: filepath.Join(t.TempDir(), "sim.key"), NoCache: true,
		Stdout: &stdout, Stderr: &stderr, Warnings: &warnings,
		LogSink: func() (io.WriteCloser, error) {
			runnerAtOpen = children(t)
			return nil, errors.New("the sink is gone")
		},
		BeforeStart: func(int) { started = true },
	})
	if c := errcode.From(err).Code; c != errcode.LogSinkUnavailable {
		t.Fatalf("the run's error %v (code %s), want %s", err, c, errcode.LogSinkUnavailable)
	}
	if len(runnerAtOpen) == 0 {
		t.Errorf("the log was opened before the runner started")
	}
	if started {
		t.Errorf("the run went on to start the workload after its log failed")
	}
	// The run returns once its runner is killed, without waiting for the
	// kernel to tear it down (the supervisor's waiting goroutine reaps
	// it): a runner still there after that is one left behind.
	deadline := time.Now().Add(10 * time.Second)
	for len(children(t)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := children(t); len(left) > 0 {
		t.Errorf("runners left behind: %v", left)
	}
	host := stdout.String() + stderr.String() + warnings.String() + err.Error()
	if strings.Contains(host, "hello from a tiny module") {
		t.Errorf("the workload's output reached the host: %q", host)
	}
	if stdout.Len() > 0 || stderr.Len() > 0 {
		t.Errorf("the host's stdout %q and stderr %q, want nothing", stdout.String(), stderr.String())
	}
}

// TestLogOpenedAfterRunnerStarted: a run whose log opens once the runner
// has started records in it what came before (the warnings, the
// compilation cache's outcome), then the run, and the workload's output.
func TestLogOpenedAfterRunnerStarted(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nprofiles = [\"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	var sink bufferSink
	var runnerAtOpen []string
	_, err = ampoule.Run(context.Background(), bundle, ampoule.Config{
		Profile: "staging", Backend: tee.KindSim, SimKey: filepath.Join(t.TempDir(), "sim.key"), NoCache: true, Warnings: io.Discard,
		LogSink: func() (io.WriteCloser, error) {
			runnerAtOpen = children(t)
			return &sink, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(runnerAtOpen) == 0 {
		t.Errorf("the log was opened before the runner started")
	}
	r, err := ampoule.OpenLog(&sink, id, ampoule.LogCheck{})
	if err != nil {
		t.Fatal(err)
	}
	runtime, out := logText(t, r)
	if out != "hello from a tiny module\n" {
		t.Errorf("the workload's output in the log: %q", out)
	}
	order := []string{ampoule.WarningSim, "running", "evidence", "compiled", "run ended"}
	at := 0
	for _, want := range order {
		i := strings.Index(runtime[at:], want)
		if i < 0 {
			t.Fatalf("the log's runtime records lack %q after offset %d:\n%s", want, at, runtime)
		}
		at += i + len(want)
	}
}
