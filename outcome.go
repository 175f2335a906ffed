package ampoule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
)

// JSONLines turns launch's own text lines ("launch: warning: ...") into
// JSON records, one a line, in the form the runtime's records take under
// --log-json (hclog's: @level, @message, @module, @timestamp), so that a
// run with --log-json writes nothing but JSON records to its streams.
type JSONLines struct {
	mu      sync.Mutex
	w       io.Writer
	partial []byte
}

// NewJSONLines writes the records to w.
func NewJSONLines(w io.Writer) *JSONLines { return &JSONLines{w: w} }

// Write writes each whole line of p as a record, holding a partial one.
func (j *JSONLines) Write(p []byte) (int, error) {
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
func (j *JSONLines) record(rec map[string]any) error {
	rec["@module"] = "launch"
	rec["@timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(b, '\n'))
	return err
}

// ErrorRecord writes a run's final error as one record: what its text
// line says (text, as errcode.Detailed or errcode.Static made it for the
// profile, so a record shows no more than the line would), its code and
// name, the run's ref where the line names it, and its hint where the
// line has one.
func (j *JSONLines) ErrorRecord(err error, text, ref string) error {
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

// FailJSON shows err, a run's failure before it has a profile's lines, as
// one --log-json record on w, and returns the exit status of its class.
func FailJSON(w io.Writer, err error) int {
	NewJSONLines(w).ErrorRecord(err, errcode.Detailed(err), "")
	return errcode.From(err).Code.Class().ExitStatus()
}

// Outcome shows a run's end to the host the way its profile allows, once:
// the run's own end and a forced exit may both try. Host, Profile and Ref
// are the run's; JSON, if set, writes the lines as JSON records.
type Outcome struct {
	Host    *HostLines
	Profile profiles.Profile
	Ref     string
	JSON    *JSONLines
	shown   sync.Once
}

// Finish shows the run's failures and returns the exit status: the
// workload's own under a profile that passes it, else the error's class.
func (o *Outcome) Finish(res Result, err error) int {
	// Lines still held (a run that started no workload) are shown.
	o.Host.Settle()
	if err != nil {
		// A second failure (the sealed mount not sealed after a failed
		// run) is shown too; the exit status is the run's.
		o.Show(append(res.Also, err)...)
		return errcode.From(err).Code.Class().ExitStatus()
	}
	if res.ExitCode > 255 {
		// An exit status is one byte; a larger code must not wrap to success.
		return 255
	}
	return int(res.ExitCode)
}

// Show shows errs to the host, each in full or, under a profile with
// static errors, as its code and the run's ref; only the first call shows
// anything.
func (o *Outcome) Show(errs ...error) {
	o.shown.Do(func() {
		o.Host.Settle()
		for _, e := range errs {
			text := errcode.Detailed(e)
			if o.Profile.StaticErrors {
				text = errcode.Static(e, o.Ref)
			}
			if o.JSON != nil {
				o.JSON.ErrorRecord(e, text, o.Ref)
				continue
			}
			fmt.Fprint(o.Host, text)
		}
	})
}
