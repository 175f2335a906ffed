package ampoule

import (
	"os"
	"sync"

	"github.com/ampoule-run/ampoule/sealed"
)

// exitCleanups are what must happen on the exit paths that do not unwind
// (a second signal, a run that does not stop in time), such as showing the
// host a run's line.
var exitCleanups struct {
	sync.Mutex
	next int
	fns  map[int]func()
}

// AtExit registers fn to run before Exit ends the process without
// unwinding; drop unregisters it.
func AtExit(fn func()) (drop func()) {
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

// Exit ends the process with code, where it cannot unwind (a second
// signal, a run that does not stop in time): it runs what AtExit
// registered and removes every sealed mount's plaintext workspace still
// there first, so that no plaintext outlives the process.
func Exit(code int) {
	exitCleanups.Lock()
	for _, fn := range exitCleanups.fns {
		fn()
	}
	exitCleanups.Unlock()
	sealed.RemoveAll()
	os.Exit(code)
}
