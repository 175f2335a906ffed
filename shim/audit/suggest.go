package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// Report is what an audited run writes (launch run --audit-json) and
// Suggest drafts an allowlist from.
type Report struct {
	Syscalls []Count `json:"syscalls"`
}

// ErrNotReport is what DecodeReport returns for data that is not a report.
var ErrNotReport = errors.New("not an audit report")

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
