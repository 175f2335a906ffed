package ampoule

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// ForcedExitDelay is how long a stopped run may take to unwind after the
// first SIGINT or SIGTERM before StopSignals ends the process regardless.
const ForcedExitDelay = 900 * time.Millisecond

// Stopper is a launcher process's handling of the signals that stop it,
// made by StopSignals from main: the first SIGINT or SIGTERM cancels its
// context; a second one, or a run slow to unwind (ForcedExitDelay), ends
// the process with status 130 through Exit, so that the host is shown the
// run's line and no sealed workspace outlives it. A server that drains
// (Drain) waits for the second signal instead.
type Stopper struct {
	sigs     chan os.Signal
	draining atomic.Bool
	// exit and delay are Exit and ForcedExitDelay but in tests.
	exit  func(int)
	delay time.Duration
}

// StopSignals starts a Stopper for the whole process; the context it
// returns ends, with the signal as its cause, on the first SIGINT or
// SIGTERM. Call it once, from main.
func StopSignals(parent context.Context) (context.Context, *Stopper) {
	s := &Stopper{sigs: make(chan os.Signal, 8), exit: Exit, delay: ForcedExitDelay}
	return s.start(parent), s
}

func (s *Stopper) start(parent context.Context) context.Context {
	signal.Notify(s.sigs, syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		sig := <-s.sigs
		cancel(fmt.Errorf("%v", sig))
		if s.draining.Load() {
			// A server drains for as long as its runs take.
			<-s.sigs
			s.exit(130)
			return
		}
		select {
		case <-s.sigs:
		case <-time.After(s.delay):
		}
		s.exit(130)
	}()
	return ctx
}

// Protect makes the process a protected launcher (the package's Protect),
// the signals that would dump its stacks then stopping it as SIGTERM does.
func (s *Stopper) Protect() error { return Protect(s.sigs) }

// Drain makes the first signal stop only the context, for as long as the
// process takes to unwind (a server finishing its runs); a second signal
// still ends it.
func (s *Stopper) Drain() { s.draining.Store(true) }
