package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ampoule-run/ampoule/internal/regfile"
)

// Report is what an audited run writes (launch run --audit-json) and
// Suggest drafts an allowlist from.
type Report struct {
	Syscalls []Count `json:"syscalls"`
}

// ErrNotReport is what DecodeReport returns for data that is not a report.
var ErrNotReport = errors.New("not an audit report")

// WriteReportFile writes counts to the file path as the Report that
// ReadReportFile reads back.
func WriteReportFile(path string, counts []Count) error {
	b, err := json.MarshalIndent(Report{Syscalls: counts}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadReportFile reads the Report in the regular file path: an error
// reading it, or DecodeReport's prefixed with the path.
func ReadReportFile(path string) (*Report, error) {
	data, err := regfile.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := DecodeReport(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// DecodeReport reads a Report, refusing anything without its list of
// system calls or with a call that has no name.
func DecodeReport(data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotReport, err)
	}
	if r.Syscalls == nil {
		return nil, fmt.Errorf("%w: no syscalls list", ErrNotReport)
	}
	for _, c := range r.Syscalls {
		if c.Name == "" {
			return nil, fmt.Errorf("%w: system call %d has no name", ErrNotReport, c.Nr)
		}
	}
	return &r, nil
}

// Row is one row of a drafted allowlist: a call the run made, how often,
// and how the allowlist treats it ("" for a call it does not allow: a new
// row, for a reviewer to give a reason or refuse).
type Row struct {
	Count
	How string
}

// Draft is an allowlist drafted from a run: a row per call it made, in the
// report's order, how many of them are new, and the allowed calls it did
// not make, sorted.
type Draft struct {
	Rows   []Row
	New    int
	Unused []string
}

// Suggest drafts an allowlist from the calls a run made, against allowed
// (shim.AllowedCalls's map). It decides nothing: a new call is marked, never added.
func Suggest(calls []Count, allowed map[string]string) Draft {
	var d Draft
	seen := map[string]bool{}
	for _, c := range calls {
		seen[c.Name] = true
		d.Rows = append(d.Rows, Row{c, allowed[c.Name]})
		if allowed[c.Name] == "" {
			d.New++
		}
	}
	for name := range allowed {
		if !seen[name] {
			d.Unused = append(d.Unused, name)
		}
	}
	sort.Strings(d.Unused)
	return d
}

// WriteTo writes the draft as Go rows of the seccomp allowlist for a
// person to review, as launch audit --suggest prints it: each call made,
// how the allowlist takes it or NEW for one it refuses today, the calls
// allowed but not made, and the totals.
func (d Draft) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	b.WriteString("// Draft seccomp allowlist from an audited run. Review every NEW row: each\n")
	b.WriteString("// needs a reason (Why) before it joins shim/seccomp_amd64.go.\n")
	for _, r := range d.Rows {
		if r.How != "" {
			fmt.Fprintf(&b, "unix.SYS_%s: {Name: %q, ...}, // %s; %d calls\n", strings.ToUpper(r.Name), r.Name, r.How, r.Count.Count)
		} else {
			fmt.Fprintf(&b, "unix.SYS_%s: {Name: %q, Rule: MatchAll{}, Why: \"say who needs it\"}, // NEW: %d calls, refused today\n", strings.ToUpper(r.Name), r.Name, r.Count.Count)
		}
	}
	if len(d.Unused) > 0 {
		fmt.Fprintf(&b, "// Allowed but not made by this run: %v\n", d.Unused)
	}
	fmt.Fprintf(&b, "// %d calls made, %d of them new.\n", len(d.Rows), d.New)
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// WriteCounts writes a run's system calls as a table, each with how
// allowed (shim.AllowedCalls's map) takes it, every line prefixed, as
// launch run --audit prints them.
func WriteCounts(w io.Writer, prefix string, counts []Count, allowed map[string]string) {
	fmt.Fprintf(w, "%s %d kinds of system call by the runner after compilation\n", prefix, len(counts))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tSYSCALL\tCOUNT\tALLOWLIST\n", prefix)
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", prefix, c.Name, c.Count, allowed[c.Name])
	}
	tw.Flush()
}
