package audit

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/internal/regfile"
)

// TestSuggest: each call the run made is a row in the report's order,
// with the allowlist's words for it or none (a new row, counted); the
// allowed calls the run did not make are listed, sorted.
func TestSuggest(t *testing.T) {
	allowed := map[string]string{"read": "allowed", "clone": "allowed only if", "exit": "allowed", "brk": "allowed"}
	d := Suggest([]Count{{Nr: 0, Name: "read", Count: 40}, {Nr: 41, Name: "socket", Count: 1}, {Nr: 56, Name: "clone", Count: 3}}, allowed)
	want := []Row{{Count{0, "read", 40}, "allowed"}, {Count{41, "socket", 1}, ""}, {Count{56, "clone", 3}, "allowed only if"}}
	if !slices.Equal(d.Rows, want) || d.New != 1 || !slices.Equal(d.Unused, []string{"brk", "exit"}) {
		t.Errorf("%+v", d)
	}
	if d := Suggest(nil, allowed); len(d.Rows) != 0 || d.New != 0 || len(d.Unused) != 4 {
		t.Errorf("no calls: %+v", d)
	}
}

func TestDecodeReport(t *testing.T) {
	r, err := DecodeReport([]byte(`{"syscalls":[{"nr":0,"name":"read","count":2}]}`))
	if err != nil || len(r.Syscalls) != 1 || r.Syscalls[0].Count != 2 {
		t.Fatalf("%+v, %v", r, err)
	}
	for _, bad := range []string{``, `{}`, `[]`, `{"syscalls":null}`, `{"syscalls":[{"nr":1}]}`, `{"syscalls":"x"}`} {
		if _, err := DecodeReport([]byte(bad)); !errors.Is(err, ErrNotReport) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestReportFile: counts written to a file read back the same; a file
// that is not a report is ErrNotReport with its path, and a directory is
// refused before it is read.
func TestReportFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.json")
	counts := []Count{{Nr: 0, Name: "read", Count: 2}, {Nr: 1, Name: "write", Count: 7}}
	if err := WriteReportFile(path, counts); err != nil {
		t.Fatal(err)
	}
	r, err := ReadReportFile(path)
	if err != nil || !slices.Equal(r.Syscalls, counts) {
		t.Fatalf("%+v, %v", r, err)
	}
	os.WriteFile(path, []byte(`{}`), 0o644)
	if _, err := ReadReportFile(path); !errors.Is(err, ErrNotReport) || !strings.HasPrefix(err.Error(), path+": ") {
		t.Errorf("not a report: %v", err)
	}
	if _, err := ReadReportFile(dir); !errors.Is(err, regfile.ErrNotRegular) {
		t.Errorf("a directory: %v", err)
	}
}

// FuzzDecodeReport: any bytes decode to a report whose every call has a
// name, or are refused with ErrNotReport; never a panic.
func FuzzDecodeReport(f *testing.F) {
	f.Add([]byte(`{"syscalls":[{"nr":0,"name":"read","count":2}]}`))
	f.Add([]byte(`{"syscalls":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeReport(data)
		if err != nil {
			if !errors.Is(err, ErrNotReport) {
				t.Errorf("%q: %v", data, err)
			}
			return
		}
		for _, c := range r.Syscalls {
			if c.Name == "" {
				t.Errorf("%q: a call with no name", data)
			}
		}
		Suggest(r.Syscalls, map[string]string{"read": "allowed"})
	})
}
