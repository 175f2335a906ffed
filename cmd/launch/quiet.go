package main

import (
	"flag"
	"io"
)

// quietFlag declares -q and --quiet on fs: they hide launch's own
// informational lines (what it made, what a log was found bound to, a
// compile's progress), never an error and never a warning, so that a
// script or a CI job sees only what asks for attention. The command's
// action sets cliEnv.quiet from it.
func quietFlag(fs *flag.FlagSet) *bool {
	q := new(bool)
	fs.BoolVar(q, "q", false, quietUsage)
	fs.BoolVar(q, "quiet", false, quietUsage)
	return q
}

const quietUsage = "print no informational lines (errors and warnings still are)"

// info is where an informational line goes: w, or nowhere under --quiet.
func (e *cliEnv) info(w io.Writer) io.Writer {
	if e.quiet {
		return io.Discard
	}
	return w
}
