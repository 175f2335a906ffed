package ampoule

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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
