package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
)

// jsonLines turns launch's own text lines ("launch: warning: ...") into
// JSON records, one a line, in the form the runtime's records take under
// --log-json (hclog's: @level, @message, @module, @timestamp), so that a
// run with --log-json writes nothing but JSON records to its streams.
type jsonLines struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
}

// Write writes each whole line of p as a record, holding a partial one.
func (j *jsonLines) Write(p []byte) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.partial = append(j.partial, p...)
	for {
		i := bytes.IndexByte(j.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(j.partial[:i])
		j.partial = j.partial[i+1:]
		level, msg := "info", strings.TrimPrefix(line, "launch: ")
		if m, ok := strings.CutPrefix(line, "launch: warning: "); ok {
			level, msg = "warn", m
		}
		if err := j.record(map[string]any{"@level": level, "@message": msg}); err != nil {
			return len(p), err
		}
	}
}

// record writes one record, with the launcher's module and the time.
func (j *jsonLines) record(rec map[string]any) error {
	rec["@module"] = "launch"
	rec["@timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(b, '\n'))
	return err
}

// errorRecord writes a run's final error as one record: what its text
// line says (text, as errcode.Detailed or errcode.Static made it for the
// profile, so a record shows no more than the line would), its code and
// name, the run's ref where the line names it, and its hint where the
// line has one.
func (j *jsonLines) errorRecord(err error, text, ref string) error {
	c := errcode.From(err).Code
	first, rest, _ := strings.Cut(strings.TrimSuffix(text, "\n"), "\n")
	msg, ok := strings.CutPrefix(first, "launch: error: ")
	if !ok {
		msg = strings.TrimPrefix(first, "launch: ")
	}
	// The code leads the detail ("E4001 memory-limit: ..."): it has a
	// field of its own. A static line is the code and ref alone, kept.
	if m, ok := strings.CutPrefix(msg, c.String()+": "); ok {
		msg = m
	}
	rec := map[string]any{"@level": "error", "@message": msg, "code": fmt.Sprintf("E%04d", int(c)), "name": c.Name()}
	if strings.Contains(first, "(ref "+ref+")") {
		rec["ref"] = ref
	}
	if h, ok := strings.CutPrefix(rest, "launch: hint: "); ok {
		rec["hint"] = h
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.record(rec)
}
