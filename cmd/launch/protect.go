package main

import (
	"os"
	"sync"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/sealed"
)

// protectLauncher makes this process a protected launcher
// (ampoule.Protect), before a run under a Protected profile or the broker
// reads anything; the signals that would dump its stacks go to sigs.
func protectLauncher(sigs chan<- os.Signal) error { return ampoule.Protect(sigs) }

// exitCleanups are what must happen on the exit paths that do not unwind
// (a second signal, a run that does not stop in time): the run's line shown.
var exitCleanups struct {
	sync.Mutex
	next int
	fns  map[int]func()
}

// atExit registers fn to run before the process exits without unwinding;
// drop unregisters it.
func atExit(fn func()) (drop func()) {
	exitCleanups.Lock()
	defer exitCleanups.Unlock()
	if exitCleanups.fns == nil {
		exitCleanups.fns = map[int]func(){}
	}
	id := exitCleanups.next
	exitCleanups.next++
	exitCleanups.fns[id] = fn
	return func() {
		exitCleanups.Lock()
		defer exitCleanups.Unlock()
		delete(exitCleanups.fns, id)
	}
}

// exit runs the registered cleanups, removes every sealed mount's
// plaintext workspace still there, and exits with code.
func exit(code int) {
	exitCleanups.Lock()
	for _, fn := range exitCleanups.fns {
		fn()
	}
	exitCleanups.Unlock()
	sealed.RemoveAll()
	os.Exit(code)
}
