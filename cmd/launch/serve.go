package main

import (
	"context"
	"errors"
	"flag"
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

func cmdServe(fs *flag.FlagSet) action {
	listen := fs.String("listen", "", "the socket to listen on: unix:PATH")
	maxRuns := fs.Int("max-runs", 0, "runs going at once (default: the number of CPUs)")
	queue := fs.Int("queue", 0, "runs waiting beyond --max-runs before one is refused with E4013 (default: 4 times --max-runs; -1: none)")
	budget := fs.Int64("warm-budget", 0, "MiB of resident memory for idle warm runners (default: 512; -1: keep none)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		return e.serve(ctx, *listen, *maxRuns, *queue, *budget)
	}
}

func (e *cliEnv) serve(ctx context.Context, listen string, maxRuns, queue int, budget int64) int {
	// The server runs staging and production runs too: it is a
	// protected launcher, whatever the profile of its first run.
	if e.protect != nil {
		if err := e.protect(); err != nil {
			return e.fail(err)
		}
	}
	l, path, err := listenUnix(listen)
	if err != nil {
		return e.fail(err)
	}
	defer os.Remove(path)
	wb := budget
	if wb > 0 {
		wb <<= 20
	}
	s := ampoule.NewServer(ampoule.ServerConfig{MaxRuns: maxRuns, MaxQueue: queue, WarmBudget: wb})
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
