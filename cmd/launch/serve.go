package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
)

// draining, set by serve, makes the first SIGINT or SIGTERM drain the
// server rather than end the process after forcedExitDelay; a second one
// still ends it.
var draining atomic.Bool

func serveCommand() command {
	return command{
		name:    "serve",
		summary: "run bundles sent by 'launch run --server', keeping runners warm",
		usage:   "serve --listen unix:PATH [--max-runs N] [--queue N] [--warm-budget MIB]",
		help: `
Serve listens on a unix socket (made 0600) for runs that 'launch run --server
unix:PATH BUNDLE' sends, and runs each as 'launch run' would: the same
profiles, refusals, output, warnings, encrypted log and exit status. The
server reads and measures the bundle at the path the client names; the
client sees what 'launch run' would show.

After a run, one runner for the same bundle, profile, backend and limits is
started in the background and compiles its module while idle; the next such
run is handed that runner, which waits only for the run's own attestation.
Each runner serves one run. Runs with mounts or a [sealed] mount start their
runner when they run.

At most --max-runs runs go at once (default: the number of CPUs) and
--queue more wait (default: 4 times --max-runs); a run past that is refused
with E4013 server-busy. Idle runners are kept within --warm-budget MiB of
resident memory, the least recently used killed first.

SIGINT or SIGTERM drains the server: it stops accepting, lets the runs going
end, kills the idle runners and exits 0; a second signal ends it at once.
A file that is not a socket at PATH is refused (E1071); a socket no server
answers on is replaced.

Examples:
  launch serve --listen unix:/run/ampoule.sock &
  launch run --server unix:/run/ampoule.sock wasm-examples/hello`,
		run: doServe,
	}
}

func doServe(ctx context.Context, e *cliEnv, args []string) int {
	c := serveCommand()
	fs := e.newFlagSet(c)
	listen := fs.String("listen", "", "the socket to listen on: unix:PATH")
	maxRuns := fs.Int("max-runs", 0, "runs going at once (default: the number of CPUs)")
	queue := fs.Int("queue", 0, "runs waiting beyond --max-runs before one is refused with E4013 (default: 4 times --max-runs; -1: none)")
	budget := fs.Int64("warm-budget", 0, "MiB of resident memory for idle warm runners (default: 512; -1: keep none)")
	pos, _, err := e.parse(c, fs, args)
	if err == errHelp {
		return 0
	}
	if err != nil {
		return e.fail(err)
	}
	if len(pos) != 0 {
		return e.fail(errcode.Errorf(errcode.Usage, "serve takes no arguments, got %d", len(pos)).WithHint("usage: launch " + c.usage))
	}
	// The server runs staging and production runs too: it is a
	// protected launcher, whatever the profile of its first run.
	if e.protect != nil {
		if err := e.protect(); err != nil {
			return e.fail(err)
		}
	}
	l, path, err := listenUnix(*listen)
	if err != nil {
		return e.fail(err)
	}
	defer os.Remove(path)
	wb := *budget
	if wb > 0 {
		wb <<= 20
	}
	s := ampoule.NewServer(ampoule.ServerConfig{MaxRuns: *maxRuns, MaxQueue: *queue, WarmBudget: wb})
	draining.Store(true)
	fmt.Fprintf(e.stderr, "launch: serving on unix:%s\n", path)
	if err := s.Serve(ctx, l); err != nil {
		s.Shutdown(context.Background())
		return e.fail(errcode.Errorf(errcode.ServerSocketRefused, "unix:%s: %v", path, err).Host())
	}
	s.Shutdown(context.Background())
	fmt.Fprintf(e.stderr, "launch: stopped serving on unix:%s\n", path)
	return 0
}

// listenUnix makes the server's socket: owner-only, never in place of a
// file that is not a socket or of a socket a server answers on.
func listenUnix(addr string) (net.Listener, string, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok || path == "" {
		return nil, "", errcode.Errorf(errcode.Usage, "--listen %q is not unix:PATH", addr).Host()
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: a file that is not a socket is there", path).Host()
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: a server answers there", path).Host()
		}
		if err := os.Remove(path); err != nil {
			return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: removing the stale socket: %v", path, err).Host()
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: %v", path, err).Host()
	}
	// Made owner-only: no moment at which another user may connect.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: %v", path, err).Host()
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	return l, path, nil
}
