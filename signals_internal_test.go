package ampoule

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// stopperFor starts a Stopper whose forced exit is reported on the
// returned channel instead of ending the test binary.
func stopperFor(t *testing.T, delay time.Duration) (context.Context, *Stopper, chan int) {
	t.Helper()
	exits := make(chan int, 1)
	s := &Stopper{sigs: make(chan os.Signal, 8), exit: func(code int) { exits <- code }, delay: delay}
	ctx := s.start(context.Background())
	t.Cleanup(func() { signal.Stop(s.sigs) })
	return ctx, s, exits
}

// A real SIGTERM cancels the context with the signal as its cause, and a
// run that does not unwind is ended with 130 after the delay.
func TestStopperSignalThenForcedExit(t *testing.T) {
	ctx, _, exits := stopperFor(t, 50*time.Millisecond)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not cancel the context")
	}
	if cause := context.Cause(ctx); cause == nil || cause.Error() != "terminated" {
		t.Errorf("cause = %v, want the signal", cause)
	}
	select {
	case code := <-exits:
		if code != 130 {
			t.Errorf("exit %d, want 130", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no forced exit after the delay")
	}
}

// A second signal ends the process at once, not after the delay.
func TestStopperSecondSignalExits(t *testing.T) {
	ctx, s, exits := stopperFor(t, time.Hour)
	s.sigs <- syscall.SIGINT
	<-ctx.Done()
	s.sigs <- syscall.SIGINT
	select {
	case code := <-exits:
		if code != 130 {
			t.Errorf("exit %d, want 130", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not end the process")
	}
}

// A draining server is not ended by the delay, only by a second signal.
func TestStopperDrainWaitsForSecondSignal(t *testing.T) {
	ctx, s, exits := stopperFor(t, 10*time.Millisecond)
	s.Drain()
	s.sigs <- syscall.SIGTERM
	<-ctx.Done()
	select {
	case <-exits:
		t.Fatal("a draining process was ended by the delay")
	case <-time.After(100 * time.Millisecond):
	}
	s.sigs <- syscall.SIGTERM
	select {
	case <-exits:
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not end a draining process")
	}
}
