package ampoule

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/sandbox"
)

// runLog is a run's encrypted log and its sink.
type runLog struct {
	w    *logging.Writer
	sink io.WriteCloser
	// warnings arose while the run attested, before the log existed.
	warnings []string
}

// openLog gives a run whose profile hides its output from the host an
// encrypted log to the manifest's recipients (any one of them opens it), and points the workload's
// stdout and stderr at it. Without a recipient the output is withheld. The
// run attests first: the log's header carries its evidence and is signed
// with the runtime key the evidence binds, so that only this run's TEE can
// write a log the tenant accepts as this run's.
func (r *run) openLog(ctx context.Context, b *loader.Bundle, spec *sandbox.Spec, measurement func() loader.Measurement) (*runLog, error) {
	p, m := r.profile, b.Manifest
	if p.PlainLogs {
		return nil, nil
	}
	names := m.Recipients()
	if len(names) == 0 {
		r.warn(WarningWithheld)
		return nil, nil
	}
	rcpts := make([]*logging.Recipient, len(names))
	for i, name := range names {
		rcpt, err := logging.ParseRecipient(name)
		if err != nil {
			if m.LogRecipients == nil {
				return nil, errcode.Errorf(errcode.ManifestInvalid, "log_recipient: %v", err)
			}
			return nil, errcode.Errorf(errcode.ManifestInvalid, "log_recipients[%d]: %v", i, err)
		}
		rcpts[i] = rcpt
	}
	if r.cfg.LogSink == nil {
		return nil, errcode.Errorf(errcode.LogSinkUnavailable, "the manifest names a log recipient and the run has no log sink")
	}
	mm := measurement()
	var nonce []byte
	if len(brokerResources(m)) > 0 && m.Broker != nil {
		// A failure is reported, into this log, where the key is asked
		// for; the evidence then carries a nonce of its own.
		nonce, _ = r.challenge(ctx, m)
	}
	l := &runLog{}
	env, err := r.attest(ctx, mm, nonce, func(msg string) { l.warnings = append(l.warnings, msg) })
	if err != nil {
		return nil, err
	}
	envJSON, err := json.Marshal(env)
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "%v", err)
	}
	sink, err := r.cfg.LogSink()
	if err != nil {
		// The sink is the caller's own (a flag's path, a socket, a
		// refused terminal, an existing file): its code stands, and its
		// failure is the host's, shown in full under every profile.
		var ce *errcode.Error
		if errors.As(err, &ce) {
			return nil, ce.Host()
		}
		return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err).Host()
	}
	h := logging.Header{Ref: r.ref, Measurement: mm.String(), Profile: p.Name, Started: time.Now().UTC(), Envelope: envJSON}
	w, err := logging.NewWriterTo(sink, rcpts, h, r.signingKey, logging.Options{})
	if err != nil {
		sink.Close()
		return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
	}
	spec.Stdout = w.Stream(logging.SourceStdout, logging.LevelInfo)
	spec.Stderr = w.Stream(logging.SourceStderr, logging.LevelInfo)
	l.w, l.sink = w, sink
	return l, nil
}

// logger is the root of the run's runtime logger tree (hclog): into the
// tenant's log when the run has one; to Stderr under a profile with plain
// logs; nowhere otherwise.
func (r *run) logger(l *runLog) hclog.Logger {
	level := r.cfg.LogLevel
	switch {
	case l != nil:
		// The tenant's log records the run at info unless told otherwise:
		// only the tenant reads it.
		if level == hclog.NoLevel {
			level = hclog.Info
		}
		return logging.RuntimeLogger(l.w, nil, level, r.cfg.LogJSON)
	case r.profile.PlainLogs:
		if level == hclog.NoLevel {
			level = hclog.Warn
		}
		return logging.RuntimeLogger(nil, orDiscard(r.cfg.Stderr), level, r.cfg.LogJSON)
	}
	return hclog.NewNullLogger()
}

// finish seals the log. A failing sink is reported without detail.
func (l *runLog) finish(r *run) {
	werr := l.w.Close()
	cerr := l.sink.Close()
	if werr != nil || cerr != nil {
		r.warn(WarningLogSink, r.ref)
	}
}

// laterLog is the encrypted log of a run that opens it once its runner
// has started (run.opensLogLater): the module's hash, the attestation and
// the log's header then overlap the runner's start instead of coming
// before it. Until the log opens, the runtime's records are held (the
// compilation cache's, found while the runner starts) and the workload's
// streams lead nowhere: the runner writes nothing of the workload's before
// it is told to start, which is after the log has opened, and a run whose
// log fails to open is ended before that.
type laterLog struct {
	hclog.Logger // a null logger's; only the levelled records are held and passed on
	mu           sync.Mutex
	to           hclog.Logger
	held         []func(hclog.Logger)
	// stdout and stderr are the workload's streams, given to the runner
	// before the log they lead to exists.
	stdout, stderr laterWriter
}

func newLaterLog() *laterLog { return &laterLog{Logger: hclog.NewNullLogger()} }

// opened passes on the held records to the log's logger, and every record
// and write from now on.
func (l *laterLog) opened(to hclog.Logger, stdout, stderr io.Writer) {
	l.stdout.set(stdout)
	l.stderr.set(stderr)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.held {
		f(to)
	}
	l.held, l.to = nil, to
}

func (l *laterLog) do(f func(hclog.Logger)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.to != nil {
		f(l.to)
		return
	}
	l.held = append(l.held, f)
}

func (l *laterLog) Log(level hclog.Level, msg string, args ...any) {
	l.do(func(to hclog.Logger) { to.Log(level, msg, args...) })
}
func (l *laterLog) Trace(msg string, args ...any) {
	l.do(func(to hclog.Logger) { to.Trace(msg, args...) })
}
func (l *laterLog) Debug(msg string, args ...any) {
	l.do(func(to hclog.Logger) { to.Debug(msg, args...) })
}
func (l *laterLog) Info(msg string, args ...any) {
	l.do(func(to hclog.Logger) { to.Info(msg, args...) })
}
func (l *laterLog) Warn(msg string, args ...any) {
	l.do(func(to hclog.Logger) { to.Warn(msg, args...) })
}
func (l *laterLog) Error(msg string, args ...any) {
	l.do(func(to hclog.Logger) { to.Error(msg, args...) })
}

// laterWriter writes to its writer once it has one, and discards before.
type laterWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *laterWriter) set(to io.Writer) {
	w.mu.Lock()
	w.w = to
	w.mu.Unlock()
}

func (w *laterWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	to := w.w
	w.mu.Unlock()
	if to == nil {
		return len(p), nil
	}
	return to.Write(p)
}
