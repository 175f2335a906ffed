package main

import (
	"fmt"
	"github.com/ampoule-run/ampoule"
	"io"
	"sync"
	"time"
)

// progressAfter is how long a compile goes on before its progress line
// shows: shorter compiles, most with the cache, show nothing.
const progressAfter = 500 * time.Millisecond

// compileProgress is a run's Config.Compiling for a terminal w (the run's
// stderr): a compile that takes longer than after shows one line there,
// "launch: compiling module.wasm (2.6 MiB)…", erased once it ends. It is
// nil, and nothing is shown, where w is not a terminal.
func compileProgress(w io.Writer, after time.Duration) func(module string, size int) func() {
	if !ampoule.IsTerminal(w) {
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
				fmt.Fprintf(w, "launch: compiling %s (%s)…", module, sizeText(size))
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

// sizeText is a size as a person reads it: "2.6 MiB", "340 KiB", "12 bytes".
func sizeText(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
