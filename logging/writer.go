package logging

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// DefaultQueue is how many records may wait for a slow or failing sink.
const DefaultQueue = 4096

type entry struct {
	t     time.Time
	level Level
	src   Source
	msg   []byte
	end   bool
}

// Writer seals a run's records to one recipient and streams them to a sink.
// Records wait in a bounded queue (store and forward) when the sink is slow
// or failing; when the queue is full a record is dropped before it is sealed,
// so the sealed sequence has no gap, and the count of dropped records is
// itself logged (and carried by the end record).
type Writer struct {
	sink   io.Writer
	sealer *sealer
	now    func() time.Time

	mu      sync.Mutex
	queue   chan entry
	dropped uint64
	closed  bool

	done    chan struct{}
	sinkErr error
}

// NewWriter writes the header line to sink and returns a Writer. queue is
// the number of records that may wait; 0 means DefaultQueue.
func NewWriter(sink io.Writer, r *Recipient, h Header, queue int) (*Writer, error) {
	if queue <= 0 {
		queue = DefaultQueue
	}
	line, s, err := newSealer(r, h)
	if err != nil {
		return nil, err
	}
	w := &Writer{sink: sink, sealer: s, now: time.Now, queue: make(chan entry, queue), done: make(chan struct{})}
	if err := w.write(append(line, '\n')); err != nil {
		return nil, err
	}
	go w.forward()
	return w, nil
}

// Log records msg (copied) from src at level. Messages longer than
// MaxMessage are split across records. It never blocks on the sink.
func (w *Writer) Log(level Level, src Source, msg []byte) {
	for {
		n := min(len(msg), MaxMessage)
		w.enqueue(entry{t: w.now(), level: level, src: src, msg: append([]byte(nil), msg[:n]...)})
		msg = msg[n:]
		if len(msg) == 0 {
			return
		}
	}
}

func (w *Writer) enqueue(e entry) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.dropped++
		return
	}
	select {
	case w.queue <- e:
	default:
		w.dropped++
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

// forward seals queued records in order and writes them, retrying a failing
// sink; it reports drops as they happen.
func (w *Writer) forward() {
	defer close(w.done)
	var reported uint64
	for e := range w.queue {
		w.mu.Lock()
		dropped := w.dropped
		w.mu.Unlock()
		if dropped > reported {
			w.sealAndWrite(entry{t: w.now(), level: LevelWarn, src: SourceRuntime,
				msg: []byte(fmt.Sprintf("log: %d records dropped: the sink was slower than the run", dropped-reported))})
			reported = dropped
		}
		if e.end {
			w.mu.Lock()
			dropped = w.dropped
			w.mu.Unlock()
			line, err := w.sealer.sealEnd(dropped)
			if err == nil {
				err = w.write(line)
			}
			if err != nil && w.sinkErr == nil {
				w.sinkErr = err
			}
			return
		}
		w.sealAndWrite(e)
	}
}

func (w *Writer) sealAndWrite(e entry) {
	line, err := w.sealer.sealRecord(e.t, e.level, e.src, e.msg)
	if err == nil {
		err = w.write(line)
	}
	if err != nil && w.sinkErr == nil {
		w.sinkErr = err
	}
}

// write writes one line, retrying a failing sink a few times: a record once
// sealed must reach the sink or the log ends there.
func (w *Writer) write(line []byte) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var n int
		n, err = w.sink.Write(line)
		if err == nil {
			return nil
		}
		line = line[n:]
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return err
}

// Close seals the end record, waits for everything queued to reach the sink
// and reports the first sink error.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("log already closed")
	}
	w.closed = true
	w.mu.Unlock()
	w.queue <- entry{end: true}
	close(w.queue)
	<-w.done
	return w.sinkErr
}
