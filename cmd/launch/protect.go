package main

import (
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/runtime"
)

// scrubbedEnv is env as a protected launcher runs with it: no GODEBUG
// (the host's gctrace, schedtrace, inittrace and http2debug print the
// launcher's internals beside the static line, and other settings turn
// off security checks) and GOTRACEBACK=none (the host's crash would dump
// core; even the default prints a panicking goroutine's stack). The Go
// runtime reads both once, as the process starts, so a launcher whose
// environment differs must start again with this one. GOGC, GOMEMLIMIT
// and GOMAXPROCS stay: they tune resources the host controls anyway and
// print nothing.
func scrubbedEnv(env []string) (clean []string, changed bool) {
	traceback := 0
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "GODEBUG":
			changed = true
			continue
		case "GOTRACEBACK":
			traceback++
			if v != "none" {
				changed = true
			}
			continue
		}
		clean = append(clean, kv)
	}
	if traceback != 1 {
		changed = true
	}
	return append(clean, "GOTRACEBACK=none"), changed
}

// protectLauncher makes this process a protected launcher, before a run
// under a Protected profile reads anything: started again (same pid,
// same arguments) if the host's environment holds a GODEBUG or a
// GOTRACEBACK other than none, then not dumpable and without core files
// (runtime.Protect), and every signal on which the Go runtime would dump
// its stacks, SIGHUP too, goes to sigs, where it stops the run as SIGTERM
// does. SIGPIPE is ignored: a closed stderr fails the writes to it
// instead of killing the launcher before it removes its workspace.
func protectLauncher(sigs chan<- os.Signal) error {
	if env, changed := scrubbedEnv(os.Environ()); changed {
		exe, err := os.Executable()
		if err != nil {
			return errcode.Errorf(errcode.ProtectionUnavailable, "locating launch to start it again without the host's GODEBUG and GOTRACEBACK: %w", err)
		}
		err = syscall.Exec(exe, os.Args, env)
		return errcode.Errorf(errcode.ProtectionUnavailable, "starting launch again without the host's GODEBUG and GOTRACEBACK: %w", err)
	}
	if err := runtime.Protect(); err != nil {
		return errcode.Errorf(errcode.ProtectionUnavailable, "%w", err)
	}
	debug.SetTraceback("none")
	signal.Notify(sigs, runtime.DumpSignals...)
	if !signal.Ignored(syscall.SIGHUP) {
		signal.Notify(sigs, syscall.SIGHUP)
	}
	signal.Ignore(syscall.SIGPIPE)
	return nil
}

// exitCleanups undo what must not outlive the process (the sealed mount's
// plaintext workspace) on the exit paths that do not unwind: a second
// signal, or a run that does not stop in time.
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

// exit runs the registered cleanups and exits with code.
func exit(code int) {
	exitCleanups.Lock()
	for _, fn := range exitCleanups.fns {
		fn()
	}
	exitCleanups.Unlock()
	os.Exit(code)
}
