package ampoule_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
)

// bufferSink is a log sink the test reads back.
type bufferSink struct{ bytes.Buffer }

func (*bufferSink) Close() error { return nil }

// logText reads a tenant's log to its end: its runtime records' messages,
// a line each, and what the workload wrote to stdout.
func logText(t *testing.T, r *ampoule.LogReader) (runtime, stdout string) {
	t.Helper()
	var rt, out strings.Builder
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return rt.String(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		switch rec.Source {
		case logging.SourceRuntime:
			rt.Write(rec.Message)
			rt.WriteString("\n")
		case logging.SourceStdout:
			out.Write(rec.Message)
		}
	}
}

// TestWarningsGoIntoTheLog: a staging run on the simulator with a log
// recipient shows the host the simulator's warning and records it in the
// tenant's log too, as a runtime warning ahead of the run's own records,
// though it was given before the log opened; a run without a log still
// shows the host its warnings.
func TestWarningsGoIntoTheLog(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = [\"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	simKey := filepath.Join(t.TempDir(), "sim.key")
	var sink bufferSink
	var warnings bytes.Buffer
	_, err = ampoule.Run(context.Background(), bundle, ampoule.Config{
		Profile: "staging", Backend: tee.KindSim, SimKey: simKey, NoCache: true, Warnings: &warnings,
		LogSink: func() (io.WriteCloser, error) { return &sink, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if warnings.String() != "launch: warning: "+ampoule.WarningSim+"\n" {
		t.Errorf("the host's warnings: %q", warnings.String())
	}
	r, err := ampoule.OpenLog(&sink, id, ampoule.LogCheck{})
	if err != nil {
		t.Fatal(err)
	}
	var runtime []*logging.Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Source == logging.SourceRuntime {
			runtime = append(runtime, rec)
		}
	}
	if len(runtime) < 2 {
		t.Fatalf("the log holds %d runtime records", len(runtime))
	}
	if first := runtime[0]; first.Level != logging.LevelWarn || !strings.Contains(string(first.Message), ampoule.WarningSim) {
		t.Errorf("the log's first runtime record: %s %q, want the simulator's warning", first.Level, first.Message)
	}
	for _, rec := range runtime[1:] {
		if strings.Contains(string(rec.Message), ampoule.WarningSim) {
			t.Errorf("the simulator's warning is recorded twice: %q", rec.Message)
		}
	}

	// Without a recipient there is no log; the host is told both.
	plain := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = [\"staging\"]\n")
	warnings.Reset()
	if _, err := ampoule.Run(context.Background(), plain, ampoule.Config{Profile: "staging", Backend: tee.KindSim, SimKey: simKey, NoCache: true, Warnings: &warnings}); err != nil {
		t.Fatal(err)
	}
	if want := "launch: warning: " + ampoule.WarningSim + "\nlaunch: warning: " + ampoule.WarningWithheld + "\n"; warnings.String() != want {
		t.Errorf("the host's warnings without a log: %q, want %q", warnings.String(), want)
	}
}
