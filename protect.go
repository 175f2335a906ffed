package ampoule

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/sandbox"
)

// scrubbedEnv is env as a protected launcher runs with it: no GODEBUG
// (the host's gctrace, schedtrace, inittrace and http2debug print the
// launcher's internals beside the static line, and other settings turn
// off security checks) and no GOTRACEBACK but none (the host's crash
// would dump core; all, system and crash print every goroutine's stack).
// The Go runtime reads both once, as the process starts, so a launcher
// whose environment holds either otherwise must start again, with clean,
// which sets GOTRACEBACK=none. Without the variable the runtime's level is
// the default (a panicking goroutine's stack), which quietRuntime sends
// to /dev/null as it does every level's output: no start again is needed.
// GOGC, GOMEMLIMIT and GOMAXPROCS stay: they tune resources the host
// controls anyway and print nothing.
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
	if traceback > 1 {
		changed = true
	}
	return append(clean, "GOTRACEBACK=none"), changed
}

// quietRuntime points descriptor 2, where the Go runtime writes all it
// prints of its own (a crash's traceback, at whatever level the process
// started with; a fatal error's stacks), at /dev/null, and makes os.Stderr
// the host's standard error on a descriptor of its own. The launcher's
// lines reach the host as before; nothing the runtime prints does.
func quietRuntime() error {
	host, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return fmt.Errorf("moving the standard error: %w", err)
	}
	null, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(host)
		return fmt.Errorf("opening /dev/null for the runtime's output: %w", err)
	}
	err = unix.Dup3(null, 2, 0)
	unix.Close(null)
	if err != nil {
		unix.Close(host)
		return fmt.Errorf("pointing the runtime's output at /dev/null: %w", err)
	}
	os.Stderr = os.NewFile(uintptr(host), "/dev/stderr")
	return nil
}

// Protect makes the calling process a protected launcher, as staging and
// production need, before it reads anything: started again (same pid, same
// arguments) if the environment holds a GODEBUG or a GOTRACEBACK other
// than none, then not dumpable and without core files, and every signal
// on which the Go runtime would dump its stacks, SIGHUP too, is delivered
// to sigs instead, where the caller stops its run as it does on SIGTERM.
// Whatever the Go runtime itself prints from then on (a crash's traceback)
// goes to /dev/null: os.Stderr is the host's standard error on a new
// descriptor, so a caller that took os.Stderr before must take it again.
// SIGPIPE is ignored: a closed stderr fails the writes to it instead of
// killing the launcher before it removes its workspace. Call it from main,
// before any goroutine of the program's own starts. Errors are E5008.
func Protect(sigs chan<- os.Signal) error {
	if env, changed := scrubbedEnv(os.Environ()); changed {
		exe, err := os.Executable()
		if err != nil {
			return errcode.Errorf(errcode.ProtectionUnavailable, "locating this program to start it again without the host's GODEBUG and GOTRACEBACK: %w", err)
		}
		err = syscall.Exec(exe, os.Args, env)
		return errcode.Errorf(errcode.ProtectionUnavailable, "starting again without the host's GODEBUG and GOTRACEBACK: %w", err)
	}
	if err := sandbox.Protect(); err != nil {
		return errcode.Errorf(errcode.ProtectionUnavailable, "%w", err)
	}
	// none after a start again; the default without GOTRACEBACK, below
	// which SetTraceback cannot go, and quietRuntime silences.
	debug.SetTraceback("none")
	if err := quietRuntime(); err != nil {
		return errcode.Errorf(errcode.ProtectionUnavailable, "%w", err)
	}
	signal.Notify(sigs, sandbox.DumpSignals...)
	if !signal.Ignored(syscall.SIGHUP) {
		signal.Notify(sigs, syscall.SIGHUP)
	}
	signal.Ignore(syscall.SIGPIPE)
	return nil
}

// protectedHere makes the process not dumpable, with no core file (its
// soft limit zero: Protect lowers the hard limit too, which a library
// must not do to its caller), and refuses a protected run in a process whose environment the host set to
// print the launcher's internals (GODEBUG) or dump them (a GOTRACEBACK
// other than none): the Go runtime read those as the process started, and
// only starting again (Protect) undoes them.
func protectedHere() error {
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if k == "GODEBUG" || k == "GOTRACEBACK" && v != "none" {
			return errcode.Errorf(errcode.ProtectionUnavailable, "the process runs with %s set, which the Go runtime read as it started", k).
				WithHint("call ampoule.Protect at the start of main, or start the program without GODEBUG and with GOTRACEBACK=none").Host()
		}
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		return errcode.Errorf(errcode.ProtectionUnavailable, "reading the core-file limit: %v", err)
	}
	lim.Cur = 0
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		return errcode.Errorf(errcode.ProtectionUnavailable, "setting the core-file limit to zero: %v", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return errcode.Errorf(errcode.ProtectionUnavailable, "making the process not dumpable: %v", err)
	}
	return nil
}
