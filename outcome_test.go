package ampoule

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
)

func profile(t *testing.T, name string) profiles.Profile {
	t.Helper()
	p, err := profiles.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOutcome: under staging an error shows only its code and the ref, once,
// and the exit status is its class's; under debug it shows in full, and a
// workload's code passes, one too large for a byte never wrapping to 0.
func TestOutcome(t *testing.T) {
	var stdout, stderr bytes.Buffer
	o := &Outcome{Host: NewHostLines(&stdout, &stderr, false), Profile: profile(t, "staging"), Ref: "0123abcd"}
	err := errcode.Errorf(errcode.WorkloadTrap, "secret detail")
	if got, want := o.Finish(Result{}, err), errcode.WorkloadTrap.Class().ExitStatus(); got != want {
		t.Errorf("status %d, want %d", got, want)
	}
	o.Show(errcode.Errorf(errcode.Internal, "a second end"))
	if s := stderr.String(); strings.Contains(s, "secret detail") || !strings.Contains(s, "(ref 0123abcd)") || strings.Count(s, "\n") != 1 {
		t.Errorf("staging showed %q", s)
	}
	stderr.Reset()
	d := &Outcome{Host: NewHostLines(&stdout, &stderr, false), Profile: profile(t, "debug"), Ref: "0123abcd"}
	d.Finish(Result{}, err)
	if !strings.Contains(stderr.String(), "secret detail") {
		t.Errorf("debug showed %q", stderr.String())
	}
	for code, want := range map[uint32]int{0: 0, 3: 3, 256: 255, 1 << 20: 255} {
		if got := (&Outcome{Host: d.Host, Profile: d.Profile}).Finish(Result{ExitCode: code}, nil); got != want {
			t.Errorf("exit code %d: status %d, want %d", code, got, want)
		}
	}
}

// TestJSONLines: launch's own lines become records with their level, a
// partial line waits for its end, and an error record carries the code,
// name, ref and hint of the text it stands for, and no more.
func TestJSONLines(t *testing.T) {
	var b bytes.Buffer
	j := NewJSONLines(&b)
	j.Write([]byte("launch: warning: careful\nlaunch: do"))
	j.Write([]byte("ne\n"))
	err := errcode.Errorf(errcode.WorkloadTrap, "detail").WithHint("try this")
	j.ErrorRecord(err, errcode.Static(err, "0123abcd"), "0123abcd")
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 3 || recs[0]["@level"] != "warn" || recs[0]["@message"] != "careful" || recs[1]["@message"] != "done" {
		t.Fatalf("records %v", recs)
	}
	e := recs[2]
	if e["@level"] != "error" || e["code"] != "E2001" || e["name"] != "workload-trap" || e["ref"] != "0123abcd" || strings.Contains(b.String(), "detail") {
		t.Errorf("error record %v", e)
	}
}
