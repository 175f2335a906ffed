package ampoule_test

import (
	"bytes"
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
	"github.com/ampoule-run/ampoule/tee"
)

// TestLogPrintAndSummary: a staging run's log, read back, prints the
// workload's stdout to stdout and the runtime's records to stderr, or
// every record as a JSON line; the summary names the run's ref and
// profile and says the evidence was not judged without a policy. A nonce
// that is not hex is refused before any file is read.
func TestLogPrintAndSummary(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = [\"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	var sink bufferSink
	ref := ampoule.NewRef()
	_, err = ampoule.Run(context.Background(), bundle, ampoule.Config{
		Profile: "staging", Backend: tee.KindSim, SimKey: filepath.Join(t.TempDir(), "sim.key"), NoCache: true, Warnings: io.Discard, Ref: ref,
		LogSink: func() (io.WriteCloser, error) { return &sink, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	check, err := ampoule.ReadLogCheck("", "", "", ref)
	if err != nil {
		t.Fatal(err)
	}
	log := sink.Bytes()
	r, err := ampoule.OpenLog(bytes.NewReader(log), id, check)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr, summary bytes.Buffer
	n, err := r.Print(&stdout, &stderr, false, false)
	if err != nil || n < 2 {
		t.Fatalf("%d records, %v", n, err)
	}
	if stdout.String() != "hello from a tiny module\n" {
		t.Errorf("the workload's stdout: %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "[runtime ") {
		t.Errorf("the runtime's records on stderr: %q", stderr.String())
	}
	r.WriteSummary(&summary, check, n)
	if s := summary.String(); !strings.HasPrefix(s, "launch: log intact, evidence not judged: ref "+ref+", profile staging,") || !strings.Contains(s, "\nlaunch: bound to ") {
		t.Errorf("summary %q", s)
	}
	r, err = ampoule.OpenLog(bytes.NewReader(log), id, check)
	if err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if m, err := r.Print(&js, io.Discard, true, false); err != nil || m != n || strings.Count(js.String(), "\n") != n {
		t.Errorf("JSON: %d records, %d lines, %v", m, strings.Count(js.String(), "\n"), err)
	}
	if _, err := ampoule.ReadLogCheck("", "", "zz", ""); errcode.From(err).Code != errcode.Usage {
		t.Errorf("a nonce that is not hex: %v", err)
	}
}

// TestDecryptLog: a staging run's log, read from its file with the
// tenant's identity file, prints the workload's stdout and the runtime's
// records, writes the run's envelope to a new file (never over one), and
// summarizes as WriteSummary does; the identity is never read from stdin.
func TestDecryptLog(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	idFile, err := id.Marshal(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	files := ampoule.LogFiles{Identity: filepath.Join(dir, "id"), Log: filepath.Join(dir, "run.log"), EnvelopeOut: filepath.Join(dir, "env")}
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = [\"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	var sink bufferSink
	files.Ref = ampoule.NewRef()
	_, err = ampoule.Run(context.Background(), bundle, ampoule.Config{
		Profile: "staging", Backend: tee.KindSim, SimKey: filepath.Join(dir, "sim.key"), NoCache: true, Warnings: io.Discard, Ref: files.Ref,
		LogSink: func() (io.WriteCloser, error) { return &sink, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.Identity, idFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.Log, sink.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr, summary bytes.Buffer
	d, err := ampoule.DecryptLog(context.Background(), files, nil, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "hello from a tiny module\n" || !strings.Contains(stderr.String(), "[runtime ") || d.Records < 2 {
		t.Errorf("%d records; stdout %q, stderr %q", d.Records, stdout.String(), stderr.String())
	}
	d.WriteSummary(&summary)
	if s := summary.String(); !strings.HasPrefix(s, "launch: log intact, evidence not judged: ref "+files.Ref+",") {
		t.Errorf("summary %q", s)
	}
	env, err := os.ReadFile(files.EnvelopeOut)
	if err != nil || !bytes.HasPrefix(env, []byte("{")) {
		t.Errorf("the envelope written: %q, %v", env, err)
	}
	if _, err := ampoule.DecryptLog(context.Background(), files, nil, io.Discard, io.Discard); errcode.From(err).Code != errcode.OutputExists {
		t.Errorf("an envelope over an existing file: %v", err)
	}
	files.Identity, files.EnvelopeOut = "-", ""
	if _, err := ampoule.DecryptLog(context.Background(), files, bytes.NewReader(idFile), io.Discard, io.Discard); errcode.From(err).Code != errcode.IdentityInvalid {
		t.Errorf("the identity on stdin: %v", err)
	}
}
