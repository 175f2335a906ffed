package ampoule

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// ProgressAfter is how long a compile goes on before its progress line
// shows: shorter compiles, most with the cache, show nothing.
const ProgressAfter = 500 * time.Millisecond

// CompileProgress is a run's Config.Compiling for a terminal w (the run's
// stderr): a compile that takes longer than after shows one line there,
// "launch: compiling module.wasm (2.6 MiB)…", erased once it ends. It is
// nil, and nothing is shown, where w is not a terminal.
func CompileProgress(w io.Writer, after time.Duration) func(module string, size int) func() {
	if !IsTerminal(w) {
		return nil
	}
	return func(module string, size int) func() {
		var mu sync.Mutex
		shown, ended := false, false
		t := time.AfterFunc(after, func() {
			mu.Lock()
			defer mu.Unlock()
			if !ended {
				shown = true
				fmt.Fprintf(w, "launch: compiling %s (%s)…", module, SizeText(int64(size)))
			}
		})
		return func() {
			t.Stop()
			mu.Lock()
			defer mu.Unlock()
			ended = true
			if shown {
				// Back to the line's start, and erase it.
				fmt.Fprint(w, "\r\x1b[K")
			}
		}
	}
}

// SizeText is a size as a person reads it: "12 bytes", "340 KiB",
// "2.6 MiB", "1.2 GiB".
func SizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// WriteText writes the statistics for a person, as launch cache info
// prints them: the path, and the entries, their size and the versions
// they were compiled by, or that there is no cache yet.
func (st CacheStats) WriteText(w io.Writer) {
	fmt.Fprintf(w, "path:    %s\n", st.Dir)
	if !st.Exists {
		fmt.Fprintf(w, "entries: 0 (no cache yet)\n")
		return
	}
	fmt.Fprintf(w, "entries: %d\nsize:    %s\n", st.Entries, SizeText(st.Bytes))
	for _, v := range st.Versions {
		fmt.Fprintf(w, "version: %s\n", v)
	}
}

// Progress is the run's Config.Compiling: CompileProgress on the run's
// stderr, showing after after (ProgressAfter where it is 0). It is nil,
// and nothing is shown, where the run is quiet or its log may go to
// stderr.
func (h *HostLines) Progress(quiet bool, after time.Duration) func(module string, size int) func() {
	if quiet || h.logMayGoToStderr {
		return nil
	}
	if after <= 0 {
		after = ProgressAfter
	}
	return CompileProgress(h.stderr, after)
}
