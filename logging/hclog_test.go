package logging

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestRuntimeLoggerToChannel(t *testing.T) {
	id := newID(t)
	for _, asJSON := range []bool{false, true} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		l := RuntimeLogger(w, nil, hclog.Info, asJSON)
		l.Debug("hidden", "k", 1)
		l.Named("runner").Info("started", "measurement", "abc")
		l.Error("failed", "code", "E2001")
		w.Close()
		r, _ := NewReader(bytes.NewReader(buf.Bytes()), id)
		var recs []*Record
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rec)
		}
		if len(recs) != 2 {
			t.Fatalf("json=%v: %d records, want 2 (debug filtered)", asJSON, len(recs))
		}
		if recs[0].Source != SourceRuntime || recs[0].Level != LevelInfo || recs[1].Level != LevelError {
			t.Errorf("json=%v: sources/levels %v %v %v", asJSON, recs[0].Source, recs[0].Level, recs[1].Level)
		}
		msg := string(recs[0].Message)
		if asJSON {
			var m map[string]string
			if err := json.Unmarshal(recs[0].Message, &m); err != nil || m["@message"] != "started" || m["@module"] != "launch.runner" || m["measurement"] != "abc" {
				t.Errorf("json record %q: %v", msg, err)
			}
		} else if !strings.Contains(msg, "launch.runner: started measurement=abc") {
			t.Errorf("text record %q", msg)
		}
	}
}

func TestRuntimeLoggerToTerminal(t *testing.T) {
	var out bytes.Buffer
	l := RuntimeLogger(nil, &out, hclog.Warn, false)
	l.Info("quiet")
	l.Warn("loud", "k", "v")
	if strings.Contains(out.String(), "quiet") || !strings.Contains(out.String(), "[WARN]  launch: loud: k=v") {
		t.Errorf("terminal output %q", out.String())
	}
}
