package logging

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultQueue is how many sealed batches (up to 64 KiB each) may wait for a
// slow or failing sink.
const DefaultQueue = 64

// DefaultDropAfter is how long a record waits for room when the queue is full
// before it is dropped: long enough that a busy sink never loses a record,
// short enough that a stuck sink never stalls the run.
const DefaultDropAfter = 250 * time.Millisecond

// DefaultStallAfter is how long Close waits for a sink that takes nothing:
// a sink that has taken no batch (up to 64 KiB) for this long while the
// log's end waits for it is stuck, and the log ends there, unfinished,
// rather than the run never ending.
const DefaultStallAfter = 5 * time.Second

// flushAt is the size at which a batch of sealed records goes to the sink.
const flushAt = 64 << 10

// CoalesceDelay is how long a stream's small writes may wait to be sealed
// together into one record: a guest writing one byte at a time costs one
// padded record per few milliseconds, not one per byte.
const CoalesceDelay = 3 * time.Millisecond

// coalesceAt is how much a stream gathers before it seals a record at once:
// a record of this size fills its bucket.
const coalesceAt = MaxMessage

// WasteAllowance is what the log of a run's streams may spend on padding
// and framing beyond twice what the streams carried. The sealed records of
// the streams never exceed 2 × (bytes written to the streams) +
// WasteAllowance + StreamReserve per stream, so a log is bounded by the
// output limit that bounds the streams: once the allowance is spent a
// stream's pending bytes are sealed when they fill a record that costs at
// most twice them (or at Close), not when CoalesceDelay passes.
const WasteAllowance = 64 << 10

// StreamReserve is what the last, forced record of one stream may cost
// beyond twice its bytes: a one-byte record in the smallest bucket.
const StreamReserve = 4 + recordOverhead + 256 + 16

// frameCost is what sealing a record of n message bytes adds to the log.
func frameCost(n int) int64 { return int64(4 + recordOverhead + bucketFor(n) + 16) }

// Options tune a Writer; the zero value means the defaults.
type Options struct {
	// Queue is the number of batches that may wait for the sink.
	Queue     int
	DropAfter time.Duration
	// StallAfter is how long Close waits for a sink that takes nothing
	// (DefaultStallAfter).
	StallAfter time.Duration
}

// Writer seals a run's records to its recipients and streams them to a sink.
//
// Records are sealed by the caller, in order, into a batch; a batch goes to
// the sink when it is large or the sink is idle, so a live log is never held
// back. Writes to a Stream are gathered per stream for up to CoalesceDelay
// (or until they fill a record) and sealed together, within the bound that
// WasteAllowance states; Log seals one record (or more, for a long message)
// at once. Batches wait in a bounded queue (store and forward) when the sink is
// slow or failing. When the queue stays full past DropAfter a record is
// dropped before it is sealed, so the sealed sequence has no gap, and the
// count of dropped records is itself logged and carried by the end record.
type Writer struct {
	sink       io.Writer
	now        func() time.Time
	dropAfter  time.Duration
	stallAfter time.Duration
	// moved is when the sink last finished taking a batch (UnixNano).
	moved atomic.Int64

	mu       sync.Mutex // guards everything below but the channels
	sealer   *sealer
	plain    []byte // the record being laid out, reused
	batch    []byte
	dropped  uint64
	reported uint64
	closed   bool

	// Stream writes waiting to be sealed, the bytes the streams took and
	// the bytes their records cost, and the timer that seals the waiting.
	pending      []*pendingStream
	sealedIn     int64
	streamSealed int64
	timer        *time.Timer
	timerArmed   bool

	queue   chan []byte
	spare   chan []byte // emptied batches, for reuse
	done    chan struct{}
	errMu   sync.Mutex
	sinkErr error
}

// pendingStream is one stream's gathered writes.
type pendingStream struct {
	src   Source
	level Level
	buf   []byte
	first time.Time // when the first waiting byte was written
}

// NewWriter writes the header line, signed with the run's runtime key, to
// sink and returns a Writer whose log only r's identity opens. h must carry
// the run's evidence envelope, whose report data binds key's public half;
// NewWriter sets h.RuntimeKey to it.
func NewWriter(sink io.Writer, r *Recipient, h Header, key *ecdsa.PrivateKey, opts Options) (*Writer, error) {
	return NewWriterTo(sink, []*Recipient{r}, h, key, opts)
}

// NewWriterTo is NewWriter for a log that the identity of each of rs opens,
// and no other: rs holds 1 to MaxRecipients distinct recipients, and their
// order is the header's.
func NewWriterTo(sink io.Writer, rs []*Recipient, h Header, key *ecdsa.PrivateKey, opts Options) (*Writer, error) {
	queue := opts.Queue
	if queue <= 0 {
		queue = DefaultQueue
	}
	dropAfter := opts.DropAfter
	if dropAfter <= 0 {
		dropAfter = DefaultDropAfter
	}
	stallAfter := opts.StallAfter
	if stallAfter <= 0 {
		stallAfter = DefaultStallAfter
	}
	line, s, err := newSealer(rs, h, key)
	if err != nil {
		return nil, err
	}
	w := &Writer{
		sink: sink, now: time.Now, dropAfter: dropAfter, stallAfter: stallAfter, sealer: s,
		queue: make(chan []byte, queue), spare: make(chan []byte, queue+1), done: make(chan struct{}),
	}
	if err := w.write(append(line, '\n')); err != nil {
		return nil, err
	}
	w.timer = time.AfterFunc(time.Hour, w.sealPending)
	w.timer.Stop()
	go w.forward()
	return w, nil
}

// Log records msg from src at level. Messages longer than MaxMessage are
// split across records. It waits for the sink at most DropAfter.
func (w *Writer) Log(level Level, src Source, msg []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// What the streams said before this record comes before it, as far as
	// the allowance lets it.
	w.sealPendingLocked()
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
	w.logAt(w.now(), level, src, msg)
}

// logAt seals msg as a record made at t and reports whether it was sealed
// (not dropped).
func (w *Writer) logAt(t time.Time, level Level, src Source, msg []byte) bool {
	if w.closed {
		w.dropped++
		return false
	}
	if w.dropped > w.reported && w.room() {
		note := fmt.Sprintf("log: %d records dropped: the sink was slower than the run", w.dropped-w.reported)
		w.reported = w.dropped
		w.sealLocked(LevelWarn, SourceRuntime, []byte(note))
	}
	if !w.room() {
		w.dropped++
		return false
	}
	w.plain = layoutRecord(w.plain, t, level, src, msg)
	w.batch = w.sealer.seal(w.batch, w.plain)
	// Hand the batch over when it is big, or at once when the sink is idle.
	if len(w.batch) >= flushAt || len(w.queue) == 0 {
		w.handOver()
	}
	return true
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

// Stream returns an io.Writer for src: its writes, in order, become records
// from src, small ones gathered into one record (see CoalesceDelay). Bytes
// still waiting are sealed by Close.
func (w *Writer) Stream(src Source, level Level) io.Writer {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.pending {
		if p.src == src && p.level == level {
			return streamWriter{w: w, p: p}
		}
	}
	p := &pendingStream{src: src, level: level}
	w.pending = append(w.pending, p)
	return streamWriter{w: w, p: p}
}

type streamWriter struct {
	w *Writer
	p *pendingStream
}

func (s streamWriter) Write(b []byte) (int, error) {
	s.w.streamWrite(s.p, b)
	return len(b), nil
}

// streamWrite gathers b into p, sealing every record it fills.
func (w *Writer) streamWrite(p *pendingStream, b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.dropped++
		return
	}
	// Whole records straight from b when nothing waits: no copy.
	for len(p.buf) == 0 && len(b) >= coalesceAt {
		w.sealStream(w.now(), p.level, p.src, b[:coalesceAt])
		b = b[coalesceAt:]
	}
	for len(b) > 0 {
		if len(p.buf) == 0 {
			p.first = w.now()
		}
		k := min(len(b), coalesceAt-len(p.buf))
		p.buf = append(p.buf, b[:k]...)
		b = b[k:]
		if len(p.buf) == coalesceAt {
			w.sealStream(p.first, p.level, p.src, p.buf)
			p.buf = p.buf[:0]
		}
	}
	if len(p.buf) > 0 && !w.timerArmed {
		w.timerArmed = true
		w.timer.Reset(CoalesceDelay)
	}
}

// sealStream seals a stream's record and counts what it cost.
func (w *Writer) sealStream(t time.Time, level Level, src Source, msg []byte) {
	if w.logAt(t, level, src, msg) {
		w.sealedIn += int64(len(msg))
		w.streamSealed += frameCost(len(msg))
	}
}

// sealPending seals the streams' waiting bytes once CoalesceDelay has
// passed, each as far as the allowance lets it: past it, a stream's bytes
// wait until they fill a record or the log closes.
func (w *Writer) sealPending() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timerArmed = false
	w.sealPendingLocked()
}

// sealPendingLocked seals the streams' waiting bytes that the allowance
// lets it seal now.
func (w *Writer) sealPendingLocked() {
	if w.closed {
		return
	}
	for _, p := range w.pending {
		if len(p.buf) == 0 {
			continue
		}
		// The invariant: streamSealed <= 2*sealedIn + WasteAllowance. A
		// record costing at most twice its bytes always keeps it.
		n := int64(len(p.buf))
		if w.streamSealed+frameCost(len(p.buf)) > 2*(w.sealedIn+n)+WasteAllowance {
			continue
		}
		w.sealStream(p.first, p.level, p.src, p.buf)
		p.buf = p.buf[:0]
	}
}

// forward writes queued batches to the sink in order. Once a batch has
// failed to reach it the log has ended there (no record after the gap can
// be read), so the batches after it are dropped rather than each retried:
// a sink on a full disk costs the run one batch's retries, not a queue's.
func (w *Writer) forward() {
	defer close(w.done)
	failed := false
	for b := range w.queue {
		if !failed {
			if err := w.write(b); err != nil {
				failed = true
				w.errMu.Lock()
				if w.sinkErr == nil {
					w.sinkErr = err
				}
				w.errMu.Unlock()
			}
		}
		w.moved.Store(time.Now().UnixNano())
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

// ErrSinkStalled is Close's error when the sink took nothing for
// Options.StallAfter while the log's end waited for it: the log ends
// without its end record, which its reader notices. A write the sink still
// holds ends when the caller closes the sink.
var ErrSinkStalled = errors.New("the log's sink took nothing while the log's end waited: the log is unfinished")

// Close seals the end record, waits for everything to reach the sink and
// reports the first sink error. It waits for as long as the sink takes
// what is queued, and gives up on a sink that takes nothing for
// Options.StallAfter (ErrSinkStalled).
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("log already closed")
	}
	w.timer.Stop()
	for _, p := range w.pending {
		if len(p.buf) > 0 {
			w.sealStream(p.first, p.level, p.src, p.buf)
			p.buf = p.buf[:0]
		}
	}
	if w.dropped > w.reported {
		note := fmt.Sprintf("log: %d records dropped: the sink was slower than the run", w.dropped-w.reported)
		w.reported = w.dropped
		w.sealLocked(LevelWarn, SourceRuntime, []byte(note))
	}
	w.closed = true
	var endErr error
	w.batch, endErr = w.sealer.sealEnd(w.batch, w.dropped)
	queued := w.whileSinkMoves(w.queue, w.batch, nil)
	w.batch = nil
	close(w.queue)
	w.mu.Unlock()
	finished := w.whileSinkMoves(nil, nil, w.done)
	if endErr != nil {
		return fmt.Errorf("signing the end record: %w", endErr)
	}
	if !queued || !finished {
		return ErrSinkStalled
	}
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.sinkErr
}

// whileSinkMoves sends b on send, or receives from recv (a nil channel is
// never ready), waiting as long as the sink goes on taking batches; it
// reports false once the sink has taken none for stallAfter.
func (w *Writer) whileSinkMoves(send chan<- []byte, b []byte, recv <-chan struct{}) bool {
	began := time.Now()
	tick := time.NewTicker(w.stallAfter / 8)
	defer tick.Stop()
	for {
		select {
		case send <- b:
			return true
		case <-recv:
			return true
		case now := <-tick.C:
			last := time.Unix(0, w.moved.Load())
			if last.Before(began) {
				last = began
			}
			if now.Sub(last) >= w.stallAfter {
				return false
			}
		}
	}
}
