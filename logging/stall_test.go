package logging

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// stuckWriter takes its first take writes and then blocks every write
// until released, as a Unix socket whose reader has stopped does.
type stuckWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	take    int
	release chan struct{}
}

func (s *stuckWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	if s.take > 0 {
		s.take--
		defer s.mu.Unlock()
		return s.buf.Write(p)
	}
	s.mu.Unlock()
	<-s.release
	return 0, errors.New("released")
}

func (s *stuckWriter) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}

// TestCloseOfAStuckSinkEnds: a sink that takes the header and then
// nothing does not hold Close forever, whether the queue is full (the end
// record cannot be queued) or not (the queued batches never leave): Close
// gives up once the sink has taken nothing for StallAfter, says so, and
// the log it leaves is one its reader finds unfinished.
func TestCloseOfAStuckSinkEnds(t *testing.T) {
	for _, records := range []int{1, 400} {
		id := newID(t)
		sink := &stuckWriter{take: 1, release: make(chan struct{})}
		w, err := NewWriter(sink, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t),
			Options{Queue: 2, DropAfter: time.Millisecond, StallAfter: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, 16000)
		for range records {
			w.Log(LevelInfo, SourceStdout, msg)
		}
		closed := make(chan error, 1)
		go func() { closed <- w.Close() }()
		select {
		case err = <-closed:
		case <-time.After(time.Minute):
			close(sink.release)
			t.Fatalf("%d records: Close still waits for a sink that takes nothing", records)
		}
		if !errors.Is(err, ErrSinkStalled) {
			t.Errorf("%d records: Close says %v, want %v", records, err, ErrSinkStalled)
		}
		close(sink.release)
		r, err := NewReader(bytes.NewReader(sink.bytes()), id)
		if err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = r.Next()
		}
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("%d records: the unfinished log reads to %v, want %v", records, err, ErrTruncated)
		}
	}
}

// TestCloseWaitsForAMovingSink: a sink slower than StallAfter in all but
// that takes a batch within it is waited for: the whole log, end record
// and all, reaches it.
func TestCloseWaitsForAMovingSink(t *testing.T) {
	id := newID(t)
	var buf bytes.Buffer
	slow := &slowWriter{w: &buf, delay: 50 * time.Millisecond}
	w, err := NewWriter(slow, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t),
		Options{Queue: 64, DropAfter: time.Minute, StallAfter: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// 40 records of 16 KiB: about ten batches, half a second of the sink's
	// time, all queued before Close.
	msg := make([]byte, 16000)
	for range 40 {
		w.Log(LevelInfo, SourceStdout, msg)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()), id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 40 || r.Dropped != 0 {
		t.Errorf("read %d records, %d dropped; want 40, none dropped", n, r.Dropped)
	}
}

// failingWriter takes its first take writes and fails every one after,
// counting them, as a file on a full disk does.
type failingWriter struct {
	mu     sync.Mutex
	take   int
	failed int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.take > 0 {
		f.take--
		return len(p), nil
	}
	f.failed++
	return 0, errors.New("no space left on device")
}

// TestFailedSinkIsNotRetriedPerBatch: once a batch has failed to reach
// the sink (retried, then given up) the log has ended there, and the
// batches queued after it are not each written and retried again.
func TestFailedSinkIsNotRetriedPerBatch(t *testing.T) {
	id := newID(t)
	sink := &failingWriter{take: 1}
	w, err := NewWriter(sink, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t),
		Options{Queue: 64, DropAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Twenty batches or so, all queued behind the first failing one.
	msg := make([]byte, 16000)
	for range 80 {
		w.Log(LevelInfo, SourceStdout, msg)
	}
	if err := w.Close(); err == nil {
		t.Errorf("Close reports no error from a sink that failed")
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.failed > 5 {
		t.Errorf("the failing sink was written %d times: once a batch has failed, the rest are dropped (at most its 5 tries)", sink.failed)
	}
}
