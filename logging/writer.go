package logging

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultQueue is how many sealed batches (up to 64 KiB each) may wait for a
// slow or failing sink.
const DefaultQueue = 64

// DefaultDropAfter is how long a record waits for room when the queue is full
// before it is dropped: long enough that a busy sink never loses a record,
// short enough that a stuck sink never stalls the run.
const DefaultDropAfter = 250 * time.Millisecond

// flushAt is the size at which a batch of sealed records goes to the sink.
const flushAt = 64 << 10

// Options tune a Writer; the zero value means the defaults.
type Options struct {
	// Queue is the number of batches that may wait for the sink.
	Queue     int
	DropAfter time.Duration
}

// Writer seals a run's records to one recipient and streams them to a sink.
//
// Records are sealed by the caller, in order, into a batch; a batch goes to
// the sink when it is large or the sink is idle, so a live log is never held
// back. Batches wait in a bounded queue (store and forward) when the sink is
// slow or failing. When the queue stays full past DropAfter a record is
// dropped before it is sealed, so the sealed sequence has no gap, and the
// count of dropped records is itself logged and carried by the end record.
type Writer struct {
	sink      io.Writer
	now       func() time.Time
	dropAfter time.Duration

	mu       sync.Mutex // guards everything below but the channels
	sealer   *sealer
	plain    []byte // the record being laid out, reused
	batch    []byte
	dropped  uint64
	reported uint64
	closed   bool

	queue   chan []byte
	spare   chan []byte // emptied batches, for reuse
	done    chan struct{}
	errMu   sync.Mutex
	sinkErr error
}

// NewWriter writes the header line, signed with the run's runtime key, to
// sink and returns a Writer. h must carry the run's evidence envelope,
// whose report data binds key's public half; NewWriter sets h.RuntimeKey
// to it.
func NewWriter(sink io.Writer, r *Recipient, h Header, key *ecdsa.PrivateKey, opts Options) (*Writer, error) {
	queue := opts.Queue
	if queue <= 0 {
		queue = DefaultQueue
	}
	dropAfter := opts.DropAfter
	if dropAfter <= 0 {
		dropAfter = DefaultDropAfter
	}
	line, s, err := newSealer(r, h, key)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		sink: sink, now: time.Now, dropAfter: dropAfter, sealer: s,
		queue: make(chan []byte, queue), spare: make(chan []byte, queue+1), done: make(chan struct{}),
	}
	if err := w.write(append(line, '\n')); err != nil {
		return nil, err
	}
	go w.forward()
	return w, nil
}

// Log records msg from src at level. Messages longer than MaxMessage are
// split across records. It waits for the sink at most DropAfter.
func (w *Writer) Log(level Level, src Source, msg []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		n := min(len(msg), MaxMessage)
		w.logLocked(level, src, msg[:n])
		msg = msg[n:]
		if len(msg) == 0 {
			return
		}
	}
}

func (w *Writer) logLocked(level Level, src Source, msg []byte) {
	if w.closed {
		w.dropped++
		return
	}
	if w.dropped > w.reported && w.room() {
		note := fmt.Sprintf("log: %d records dropped: the sink was slower than the run", w.dropped-w.reported)
		w.reported = w.dropped
		w.sealLocked(LevelWarn, SourceRuntime, []byte(note))
	}
	if !w.room() {
		w.dropped++
		return
	}
	w.sealLocked(level, src, msg)
	// Hand the batch over when it is big, or at once when the sink is idle.
	if len(w.batch) >= flushAt || len(w.queue) == 0 {
		w.handOver()
	}
}

// room reports whether the current batch can take a record: it can unless
// it is full and the queue stays full for DropAfter.
func (w *Writer) room() bool {
	if len(w.batch) < flushAt {
		return true
	}
	select {
	case w.queue <- w.batch:
		w.batch = w.takeSpare()
		return true
	default:
	}
	t := time.NewTimer(w.dropAfter)
	defer t.Stop()
	select {
	case w.queue <- w.batch:
		w.batch = w.takeSpare()
		return true
	case <-t.C:
		return false
	}
}

func (w *Writer) sealLocked(level Level, src Source, msg []byte) {
	w.plain = layoutRecord(w.plain, w.now(), level, src, msg)
	w.batch = w.sealer.seal(w.batch, w.plain)
}

// handOver queues the batch if there is room now; otherwise it keeps
// growing until room() must wait.
func (w *Writer) handOver() {
	if len(w.batch) == 0 {
		return
	}
	select {
	case w.queue <- w.batch:
		w.batch = w.takeSpare()
	default:
	}
}

func (w *Writer) takeSpare() []byte {
	select {
	case b := <-w.spare:
		return b[:0]
	default:
		return make([]byte, 0, flushAt+maxFrame+4)
	}
}

// Stream returns an io.Writer whose every write becomes a record from src.
func (w *Writer) Stream(src Source, level Level) io.Writer {
	return streamWriter{w: w, src: src, level: level}
}

type streamWriter struct {
	w     *Writer
	src   Source
	level Level
}

func (s streamWriter) Write(p []byte) (int, error) {
	s.w.Log(s.level, s.src, p)
	return len(p), nil
}

// forward writes queued batches to the sink in order.
func (w *Writer) forward() {
	defer close(w.done)
	for b := range w.queue {
		if err := w.write(b); err != nil {
			w.errMu.Lock()
			if w.sinkErr == nil {
				w.sinkErr = err
			}
			w.errMu.Unlock()
		}
		select {
		case w.spare <- b:
		default:
		}
	}
}

// write writes sealed bytes, retrying a failing sink a few times: a record
// once sealed must reach the sink or the log ends there.
func (w *Writer) write(b []byte) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var n int
		n, err = w.sink.Write(b)
		if err == nil {
			return nil
		}
		b = b[n:]
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return err
}

// Close seals the end record, waits for everything to reach the sink and
// reports the first sink error.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("log already closed")
	}
	if w.dropped > w.reported {
		note := fmt.Sprintf("log: %d records dropped: the sink was slower than the run", w.dropped-w.reported)
		w.reported = w.dropped
		w.sealLocked(LevelWarn, SourceRuntime, []byte(note))
	}
	w.closed = true
	var endErr error
	w.batch, endErr = w.sealer.sealEnd(w.batch, w.dropped)
	w.queue <- w.batch
	w.batch = nil
	close(w.queue)
	w.mu.Unlock()
	<-w.done
	if endErr != nil {
		return fmt.Errorf("signing the end record: %w", endErr)
	}
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.sinkErr
}
