package ampoule_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
)

// TestLogEnd: a real run's log read whole ends cleanly at its end record
// (End is nil), and the same log with a second copy appended after its
// end record is refused at End (E1018 log-tampered, as the reader finds it).
func TestLogEnd(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = [\"staging\"]\nlog_recipient = \""+id.Recipient().String()+"\"\n")
	var sink bufferSink
	if _, err := ampoule.Run(context.Background(), bundle, ampoule.Config{Profile: "staging", Backend: tee.KindSim, SimKey: filepath.Join(t.TempDir(), "sim.key"),
		NoCache: true, Warnings: io.Discard, LogSink: func() (io.WriteCloser, error) { return &sink, nil }}); err != nil {
		t.Fatal(err)
	}
	log := sink.Bytes()
	for _, tc := range []struct {
		name string
		data []byte
		want errcode.Code
	}{{"the log", log, 0}, {"the log and more", append(append([]byte(nil), log...), log...), errcode.LogTampered}} {
		r, err := ampoule.OpenLog(bytes.NewReader(tc.data), id, ampoule.LogCheck{})
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = r.Next()
		}
		if err != io.EOF {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := r.End(); (err == nil) != (tc.want == 0) || err != nil && errcode.From(err).Code != tc.want {
			t.Errorf("%s: End = %v (%v), want %v", tc.name, err, errcode.From(err).Code, tc.want)
		}
	}
}

// growing is a file a run is still writing: reads see what was written
// so far, then io.EOF.
type growing struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (g *growing) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.Read(p)
}

func (g *growing) write(s string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.buf.WriteString(s)
}

// TestFollow: a followed reader waits at the end for what is written
// later, and ends with io.EOF when its context does.
func TestFollow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var src growing
	src.write("one ")
	done := make(chan string)
	go func() { b, _ := io.ReadAll(ampoule.Follow(ctx, &src)); done <- string(b) }()
	time.Sleep(300 * time.Millisecond)
	src.write("two")
	time.Sleep(300 * time.Millisecond)
	cancel()
	if got := <-done; got != "one two" {
		t.Errorf("followed %q", got)
	}
}
