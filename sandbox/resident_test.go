package sandbox

import (
	"os"
	"testing"
	"time"
)

// TestWatchResidentIdles: a runner that has compiled and waits to be told
// to start is looked at every residentIdlePoll, not every residentPoll,
// and as soon as it is told to start it is looked at again. The watched
// process is this one, already past a bound of one byte.
func TestWatchResidentIdles(t *testing.T) {
	stop, ready, started := make(chan struct{}), make(chan struct{}), make(chan struct{})
	defer close(stop)
	close(ready)
	over, err := watchResident(os.Getpid(), 1, stop, ready, started)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case rss := <-over:
		t.Fatalf("an idle runner was reported at %d bytes before its idle look", rss)
	case <-time.After(residentIdlePoll / 2):
	}
	close(started)
	select {
	case <-over:
	case <-time.After(5 * time.Second):
		t.Fatal("a started runner past its bound was not reported")
	}
}

// TestWatchResidentCompiling: until it is ready, a runner is looked at
// every residentPoll.
func TestWatchResidentCompiling(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	over, err := watchResident(os.Getpid(), 1, stop, make(chan struct{}), make(chan struct{}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-over:
	case <-time.After(residentIdlePoll - 100*time.Millisecond):
		t.Fatal("a compiling runner past its bound was not reported at the compiling pace")
	}
}
