package main

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/runtime"
	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/shim/audit"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// withheldWarning is the fixed line of a static run without a log recipient.
const withheldWarning = "launch: warning: the manifest names no log_recipient, so the workload's output is withheld\n"

const simWarning = "launch: warning: backend sim is a software simulator: nothing protects this run from the host (insecure)\n"

// teeDebugWarning is the fixed line of a run whose TEE lets its host debug
// the guest, under a profile that allows it.
const teeDebugWarning = "launch: warning: the TEE's debug policy bit is set: its host may read this run's memory\n"

func runCommand() command {
	return command{
		name:    "run",
		summary: "measure a bundle and run it",
		usage:   "run [--profile P] [--backend sim] [--dir HOST::GUEST[::rw]]... [--env K=V]... BUNDLE|MODULE.wasm [-- ARGS...]",
		help: `
Run measures the bundle (a directory or a .tar holding ampoule.toml and the
module) under the profile, then runs the module in wazero with the manifest's
arguments, environment, directories and limits.

A bare .wasm runs only under the debug profile, with a generated manifest.
--dir, --env and ARGS add to the manifest and are refused by every profile
but debug: staging and production run the measured manifest as it is.

Under debug the workload's output reaches the terminal and its exit code
becomes launch's. Under staging and production the host sees only a static
error code and a correlation id, and launch exits with one of a few fixed
statuses (see 'launch errors').

The workload reads launch's stdin where the manifest says stdin = "host";
where it does not say, under debug only. Otherwise its stdin is empty.

A manifest's [sealed] mount is kept on the host's disk as one store
encrypted under a sealing key for the measurement (--sealed FILE, by
default in $XDG_STATE_HOME/ampoule/sealed), opened before the run and
sealed back after it. The key is the TEE's, or with key = "broker" the one
the manifest's [broker] releases to the run's verified evidence.

Examples:
  launch run wasm-examples/hello
  launch run --dir ./data::/data::rw wasm-examples/files
  launch run --env NAME=dev tool.wasm -- --verbose input.txt
  launch run --sealed ./notes.sealed wasm-examples/notebook -- a note`,
		run: doRun,
	}
}

type runFlags struct {
	profile, backend, cacheDir string
	noCache, verbose, trace    bool
	confine, audit, logJSON    bool
	auditJSON, logOut, simKey  string
	sealed                     string
	dirs, env                  stringList
}

func doRun(ctx context.Context, e *cliEnv, args []string) (status int) {
	c := runCommand()
	var f runFlags
	fs := e.newFlagSet(c)
	fs.StringVar(&f.profile, "profile", "debug", "the profile: debug, staging or production")
	fs.StringVar(&f.backend, "backend", "sim", "the TEE backend: auto, sim, snp or tdx (auto never falls back to sim under production)")
	fs.Var(&f.dirs, "dir", "preopen a host directory: HOST::GUEST (read-only) or HOST::GUEST::rw (debug only; repeatable)")
	fs.Var(&f.env, "env", "set a workload environment variable K=V (debug only; repeatable)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "keep compiled code in this directory (default: the user's cache dir; debug only)")
	fs.BoolVar(&f.noCache, "no-cache", false, "compile in memory, with no on-disk cache")
	fs.BoolVar(&f.verbose, "v", false, "log what runs and its measurement (to stderr under debug, to the tenant's log otherwise)")
	fs.BoolVar(&f.logJSON, "log-json", false, "write the runtime's own log records as JSON rather than text")
	fs.BoolVar(&f.trace, "trace-calls", false, "print every host call, its arguments and its result to stderr (debug only)")
	fs.BoolVar(&f.confine, "confine", false, "confine the runner with seccomp (EPERM) under debug too; staging and production always do")
	fs.StringVar(&f.simKey, "sim-key", "", "the simulator's key file, for a run's evidence (default: the user's config dir)")
	fs.StringVar(&f.sealed, "sealed", "", "the encrypted store of the manifest's [sealed] mount (default: $XDG_STATE_HOME/ampoule/sealed/NAME.PROFILE.sealed)")
	fs.StringVar(&f.logOut, "log-out", "-", "where the encrypted log goes under staging and production: a new file, unix:SOCKET, or - for stderr")
	fs.BoolVar(&f.audit, "audit", false, "count the runner's system calls with eBPF and print them at exit (debug only; needs root)")
	fs.StringVar(&f.auditJSON, "audit-json", "", "with --audit, also write the counts as JSON to this file, for 'launch audit --suggest'")
	pos, guestArgs, err := e.parse(c, fs, args)
	if err == errHelp {
		return 0
	}
	if err != nil {
		return e.fail(err)
	}
	if len(pos) != 1 {
		return e.fail(errcode.Errorf(errcode.Usage, "run takes one BUNDLE, got %d arguments", len(pos)).
			WithHint("usage: launch " + c.usage))
	}
	profile, err := profiles.Get(f.profile)
	if err != nil {
		return e.fail(err)
	}
	r := &runner{env: e, profile: profile, ref: newCorrelationID()}
	// A run that does not unwind in time after a signal still shows the
	// host its line and exits 130 (main).
	defer atExit(func() {
		r.show(errcode.Errorf(errcode.Interrupted, "the run was stopped and did not unwind in time"))
	})()
	if profile.Protected && e.protect != nil {
		if err := e.protect(); err != nil {
			return r.finish(0, err)
		}
		// A panic here shows the host the static line, not its value.
		defer func() {
			if v := recover(); v != nil {
				status = r.finish(0, errcode.Errorf(errcode.Internal, "panic: %v", v))
			}
		}()
	}
	return r.finish(r.run(ctx, f, pos[0], guestArgs))
}

// runner carries one run's profile and correlation id, which decide how its
// outcome is shown to the host.
type runner struct {
	env     *cliEnv
	profile profiles.Profile
	ref     string
	be      tee.Backend
	// The run's evidence, made once, and the runtime key it binds (one
	// P-256 key: ECDH for what the broker wraps to it, ECDSA to sign the
	// tenant's log).
	envelope   *tee.Envelope
	runtimeKey *ecdh.PrivateKey
	signingKey *ecdsa.PrivateKey
	// The broker's challenge, asked once: its nonce goes into the run's
	// only evidence.
	challenged  bool
	brokerNonce []byte
	brokerErr   error
	// also holds failures beside the run's own, shown before it.
	also []error
	// exists is the platform probe's view of the file system (pathExists
	// unless a test gives a fake device).
	exists func(string) bool
	// bundleRoot is the bundle's directory, beneath which the manifest's
	// mounts are opened; closers release them when the run ends.
	bundleRoot *shim.Root
	closers    []func()
	// platform, when set, stands for what tee.Probe finds on this
	// machine: a test's fake TEE.
	platform *tee.Platform
	shown    sync.Once
}

// backend opens the run's backend once: its evidence and its sealing key
// come from the same one.
func (r *runner) backend(f runFlags) (tee.Backend, error) {
	if r.be == nil {
		be, err := openBackend(f.backend, f.simKey)
		if err != nil {
			return nil, err
		}
		r.be = be
	}
	return r.be, nil
}

// finish reports the outcome the way the profile allows and returns the exit
// status.
func (r *runner) finish(exitCode uint32, err error) int {
	if err != nil {
		// A second failure (the sealed mount not sealed after a failed
		// run) is shown too, each a static line where the profile hides
		// detail; the exit status is the run's.
		r.show(append(r.also, err)...)
		return errcode.From(err).Code.Class().ExitStatus()
	}
	if exitCode > 255 {
		// An exit status is one byte; a larger code must not wrap to success.
		return 255
	}
	return int(exitCode)
}

// show prints the run's outcome, once: the run's own end and a forced
// exit (doRun) may both try.
func (r *runner) show(errs ...error) {
	r.shown.Do(func() {
		for _, e := range errs {
			if r.profile.StaticErrors {
				fmt.Fprint(r.env.stderr, errcode.Static(e, r.ref))
			} else {
				fmt.Fprint(r.env.stderr, errcode.Detailed(e))
			}
		}
	})
}

func (r *runner) run(ctx context.Context, f runFlags, target string, guestArgs []string) (uint32, error) {
	p := r.profile
	exists := r.exists
	if exists == nil {
		exists = pathExists
	}
	plat := tee.Probe(exists)
	if r.platform != nil {
		plat = *r.platform
	}
	backend, err := selectBackend(p, f.backend, plat)
	if err != nil {
		return 0, err
	}
	f.backend = backend
	if backend == "sim" {
		fmt.Fprint(r.env.stderr, simWarning)
	}

	if !p.AllowHostOverrides && (len(f.dirs) > 0 || len(f.env) > 0 || len(guestArgs) > 0 || f.trace || f.audit) {
		return 0, errcode.Errorf(errcode.HostOverrideRefused, "the %s profile runs the manifest as measured; --dir, --env, --trace-calls, --audit and arguments after -- are refused", p.Name)
	}
	if f.auditJSON != "" && !f.audit {
		return 0, errcode.Errorf(errcode.Usage, "--audit-json needs --audit")
	}
	if f.cacheDir != "" && !p.DiskCache {
		return 0, errcode.Errorf(errcode.DiskCacheRefused, "the %s profile does not cache compiled code on disk", p.Name)
	}

	b, baseDir, err := openBundle(target)
	if err != nil {
		return 0, err
	}
	if b.Generated && !p.AllowBareModule {
		return 0, errcode.Errorf(errcode.BareModuleRefused, "%s is a bare module; the %s profile runs only bundles", target, p.Name)
	}
	m := b.Manifest
	if !m.AllowsProfile(p.Name) {
		return 0, errcode.Errorf(errcode.ProfileNotAllowed, "%s allows the profiles %s, not %s", b.Source, strings.Join(m.Profiles, ", "), p.Name)
	}
	if f.sealed != "" && m.Sealed == nil {
		return 0, errcode.Errorf(errcode.Usage, "--sealed: %s has no [sealed] mount", b.Source).
			WithHint("add a [sealed] table with a mount to ampoule.toml, or drop --sealed")
	}
	measurement := sync.OnceValue(func() loader.Measurement { return loader.Measure(b, p.Name) })

	defer r.close()
	spec, err := r.spec(b, baseDir, target, f, guestArgs)
	if err != nil {
		return 0, err
	}
	exe := r.env.runner
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return 0, errcode.Errorf(errcode.Internal, "locating the launch binary for the runner: %v", err)
		}
	}
	// The runner compiles while the module is measured; it runs nothing
	// until the measurement is done. (The TEE backends bind it into their
	// evidence here.)
	logw, err := r.openLog(ctx, b, f, &spec, measurement)
	if err != nil {
		return 0, err
	}
	log := r.logger(logw, f)
	if logw != nil {
		for _, w := range logw.warnings {
			log.Warn(w)
		}
	}
	var sm *sealedMount
	if m.Sealed != nil {
		// The sealed mount is unpacked before the runner starts: its
		// preopens must exist. This measures before compiling, which the
		// other runs overlap.
		err := func() error {
			key, err := r.sealingKey(ctx, f, m, measurement(), log)
			if err != nil {
				return err
			}
			sm, err = openSealed(key, m, p.Name, f.sealed, &spec)
			return err
		}()
		if sm != nil {
			// Whatever way the run ends, the plaintext goes (seal
			// removes it too; removing is idempotent).
			defer sm.remove()
		}
		if err != nil {
			if logw != nil {
				log.Error("run failed", "ref", r.ref, "detail", strings.TrimSpace(errcode.Detailed(err)))
				logw.finish(r.env.stderr, r.ref)
			}
			return 0, err
		}
	}
	var aud *audit.Audit
	measure := func(runner int) error {
		mm := measurement()
		backendNote := f.backend
		if f.backend == "sim" {
			backendNote += " (insecure)"
		}
		log.Info("running", "ref", r.ref, "bundle", m.Name, "version", m.Version, "profile", p.Name, "backend", backendNote, "measurement", mm.String())
		// A run in a TEE attests before its first instruction: the
		// launcher judges its own evidence (a TEE its host may debug is
		// refused where the profile says so), and the tenant's log opens
		// with it, so that what it records can be tied to what ran, where.
		if logw != nil || backend != sim.Kind {
			env, err := r.attest(context.Background(), f, mm, nil, func(msg string) { log.Warn(msg) })
			if err != nil {
				return err
			}
			if logw != nil {
				data, err := json.Marshal(env)
				if err != nil {
					return errcode.Errorf(errcode.Internal, "%v", err)
				}
				log.Info("evidence", "ref", r.ref, "envelope", string(data))
			}
		}
		if sm != nil {
			log.Info("sealed mount opened", "guest", m.Sealed.Guest, "store", sm.file, "entries", sm.opened, "new", !sm.found)
		}
		if f.audit {
			var err error
			if aud, err = audit.Start(uint32(runner)); err != nil {
				fmt.Fprintf(r.env.stderr, "launch: warning: %v; the run goes on without it\n", err)
			}
		}
		return nil
	}
	// The audit counts what the runner does once it has compiled: the
	// calls its seccomp filter will judge.
	ready := func() {
		if aud != nil {
			aud.Reset()
		}
	}
	res, err := runtime.Supervise(ctx, exe, spec, runtime.Hooks{BeforeStart: measure, Ready: ready, WaitExit: sm != nil})
	if aud != nil {
		r.reportAudit(aud, f.auditJSON)
		aud.Close()
	}
	if sm != nil && err != nil && errcode.From(err).Code == errcode.SealedSizeLimit {
		// The workload wrote more into the sealed mount than max_size while
		// it ran: nothing of this run is sealed, and the old store stays.
		sm.remove()
	} else if sm != nil {
		// The runner has exited: whatever the outcome, what the workload
		// left in the sealed mount is sealed back.
		if serr := sm.seal(log); serr != nil {
			if err == nil {
				err = serr
			} else {
				log.Error("sealing the sealed mount failed", "ref", r.ref, "detail", strings.TrimSpace(errcode.Detailed(serr)))
				r.also = append(r.also, serr)
			}
		}
	}
	if err == nil && res.ExitCode != 0 && !p.PassExitCode {
		err = errcode.Errorf(errcode.WorkloadExit, "the workload exited with status %d", res.ExitCode)
	}
	if logw != nil {
		if err != nil {
			log.Error("run failed", "ref", r.ref, "detail", strings.TrimSpace(errcode.Detailed(err)))
		} else {
			log.Info("run ended", "ref", r.ref, "status", res.ExitCode)
		}
		logw.finish(r.env.stderr, r.ref)
	}
	return res.ExitCode, err
}

// attest attests the run on its backend once: a runtime key made for the
// run and a nonce (the broker's, when the run asks it for a key, else a
// fresh one), bound with the measurement into the report data. The same
// envelope goes to the broker and opens the tenant's log.
func (r *runner) attest(ctx context.Context, f runFlags, mm loader.Measurement, nonce []byte, warn func(string)) (*tee.Envelope, error) {
	if r.envelope != nil {
		return r.envelope, nil
	}
	be, err := r.backend(f)
	if err != nil {
		return nil, err
	}
	if r.signingKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, errcode.Errorf(errcode.Internal, "the runtime key: %v", err)
	}
	if r.runtimeKey, err = r.signingKey.ECDH(); err != nil {
		return nil, errcode.Errorf(errcode.Internal, "the runtime key: %v", err)
	}
	if nonce == nil {
		nonce = make([]byte, 32)
		rand.Read(nonce)
	}
	pub := r.runtimeKey.PublicKey().Bytes()
	ev, event, err := attestBound(ctx, be, mm, tee.ReportData(mm, pub, nonce), warn)
	if err != nil {
		return nil, errcode.Errorf(errcode.TEEUnavailable, "attesting the run: %v", err)
	}
	if err := r.judgeDebug(be.Name(), ev, warn); err != nil {
		return nil, err
	}
	issued := time.Now().UTC()
	if c, err := sim.Verify(ev); err == nil {
		issued = c.Issued
	}
	r.envelope = &tee.Envelope{Version: tee.EnvelopeVersion, Kind: be.Name(), Insecure: be.Insecure(), Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: mm.String(), Profile: r.profile.Name, RuntimeKey: pub, Nonce: nonce, Issued: issued, Event: event}
	return r.envelope, nil
}

// judgeDebug reads the run's own evidence, straight from its TEE: one
// whose debug policy bit is set lets the host read the run's memory. A
// profile without AllowTEEDebug (production) refuses to run there; the
// others go on with a warning. Evidence the launcher cannot read is
// refused too.
func (r *runner) judgeDebug(kind string, ev tee.Evidence, warn func(string)) error {
	var debug bool
	var err error
	switch kind {
	case snp.Kind:
		debug, err = snp.ReportDebug(ev.Raw)
	case tdx.Kind:
		debug, err = tdx.QuoteDebug(ev.Raw)
	default:
		// The simulator protects nothing anyway, and says so.
		return nil
	}
	if err != nil {
		return errcode.Errorf(errcode.TEEUnavailable, "reading the run's own %s evidence: %v", kind, err)
	}
	if !debug {
		return nil
	}
	if !r.profile.AllowTEEDebug {
		return errcode.Errorf(errcode.TEEDebugRefused, "the %s TEE lets its host debug the guest (its debug policy bit is set), and the %s profile does not run there", kind, r.profile.Name)
	}
	fmt.Fprint(r.env.stderr, teeDebugWarning)
	warn(fmt.Sprintf("the TEE's debug policy bit is set: its host may read this run's memory (backend %s, profile %s)", kind, r.profile.Name))
	return nil
}

// sealingKey is the key of the run's sealed mount: the TEE's for the
// measurement, or the one the manifest's broker releases to the run's
// evidence.
func (r *runner) sealingKey(ctx context.Context, f runFlags, m *loader.Manifest, mm loader.Measurement, log hclog.Logger) ([]byte, error) {
	if m.Sealed.Key != loader.SealedKeyBroker {
		be, err := r.backend(f)
		if err != nil {
			return nil, err
		}
		// The TEE's key is taken only once the run's own evidence is
		// judged: a TEE its host may debug gives none under production.
		if !be.Insecure() {
			if _, err := r.attest(ctx, f, mm, nil, func(msg string) { log.Warn(msg) }); err != nil {
				return nil, err
			}
		}
		return teeSealingKey(ctx, be, m, mm)
	}
	c := &broker.Client{URL: m.Broker.URL, Key: m.Broker.Key}
	nonce, err := r.challenge(ctx, c)
	if err != nil {
		return nil, err
	}
	env, err := r.attest(ctx, f, mm, nonce, func(msg string) { log.Warn(msg) })
	if err != nil {
		return nil, err
	}
	secrets, err := c.Release(ctx, env, r.runtimeKey, []string{broker.SealingKey})
	if err != nil {
		return nil, brokerError(err, m.Broker.URL)
	}
	key := secrets[broker.SealingKey]
	if len(key) != 32 {
		return nil, errcode.Errorf(errcode.BrokerAnswerInvalid, "the broker's sealing key is %d bytes, not 32", len(key))
	}
	return key, nil
}

// challenge asks the manifest's broker for a nonce, once per run: the
// tenant's log opens with the run's evidence, which must carry it.
func (r *runner) challenge(ctx context.Context, c *broker.Client) ([]byte, error) {
	if !r.challenged {
		r.challenged = true
		nonce, err := c.Challenge(ctx)
		if err != nil {
			r.brokerErr = brokerError(err, c.URL)
		}
		r.brokerNonce = nonce
	}
	return r.brokerNonce, r.brokerErr
}

// brokerError gives a broker failure its registered code.
func brokerError(err error, url string) error {
	switch {
	case errors.Is(err, broker.ErrRefused):
		return errcode.Errorf(errcode.BrokerRefused, "%s: %v", url, err)
	case errors.Is(err, broker.ErrProtocol):
		return errcode.Errorf(errcode.BrokerAnswerInvalid, "%s: %v", url, err)
	}
	return errcode.Errorf(errcode.BrokerUnavailable, "%s: %v", url, err)
}

// runLog is a run's encrypted log and its sink.
type runLog struct {
	w         *logging.Writer
	closeSink func() error
	// warnings arose while the run attested, before the log existed.
	warnings []string
}

// openLog gives a run whose profile hides its output from the host an
// encrypted log to the manifest's recipient, and points the workload's
// stdout and stderr at it. Without a recipient the output is withheld. The
// run attests first: the log's header carries its evidence and is signed
// with the runtime key the evidence binds, so that only this run's TEE can
// write a log the tenant accepts as this run's.
func (r *runner) openLog(ctx context.Context, b *loader.Bundle, f runFlags, spec *runtime.Spec, measurement func() loader.Measurement) (*runLog, error) {
	p, m := r.profile, b.Manifest
	if p.PlainLogs {
		return nil, nil
	}
	if m.LogRecipient == "" {
		fmt.Fprint(r.env.stderr, withheldWarning)
		return nil, nil
	}
	rcpt, err := logging.ParseRecipient(m.LogRecipient)
	if err != nil {
		return nil, errcode.Errorf(errcode.ManifestInvalid, "log_recipient: %v", err)
	}
	mm := measurement()
	var nonce []byte
	if m.Sealed != nil && m.Sealed.Key == loader.SealedKeyBroker && m.Broker != nil {
		// A failure is reported, into this log, where the key is asked
		// for; the evidence then carries a nonce of its own.
		nonce, _ = r.challenge(ctx, &broker.Client{URL: m.Broker.URL, Key: m.Broker.Key})
	}
	l := &runLog{}
	env, err := r.attest(ctx, f, mm, nonce, func(msg string) { l.warnings = append(l.warnings, msg) })
	if err != nil {
		return nil, err
	}
	envJSON, err := json.Marshal(env)
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "%v", err)
	}
	sink, closeSink, err := openSink(f.logOut, r.env.stderr)
	if err != nil {
		return nil, err
	}
	h := logging.Header{Ref: r.ref, Measurement: mm.String(), Profile: p.Name, Started: time.Now().UTC(), Envelope: envJSON}
	w, err := logging.NewWriter(sink, rcpt, h, r.signingKey, logging.Options{})
	if err != nil {
		closeSink()
		return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
	}
	spec.Stdout = w.Stream(logging.SourceStdout, logging.LevelInfo)
	spec.Stderr = w.Stream(logging.SourceStderr, logging.LevelInfo)
	l.w, l.closeSink = w, closeSink
	return l, nil
}

// logger is the root of the run's runtime logger tree (hclog): into the
// tenant's log when the run has one, at info; to the terminal under debug,
// at info with -v and warnings only without; nowhere otherwise.
func (r *runner) logger(l *runLog, f runFlags) hclog.Logger {
	switch {
	case l != nil:
		return logging.RuntimeLogger(l.w, nil, hclog.Info, f.logJSON)
	case r.profile.PlainLogs && f.verbose:
		return logging.RuntimeLogger(nil, r.env.stderr, hclog.Info, f.logJSON)
	case r.profile.PlainLogs:
		return logging.RuntimeLogger(nil, r.env.stderr, hclog.Warn, f.logJSON)
	}
	return hclog.NewNullLogger()
}

// finish seals the log. A failing sink is reported without detail.
func (l *runLog) finish(stderr io.Writer, ref string) {
	werr := l.w.Close()
	cerr := l.closeSink()
	if werr != nil || cerr != nil {
		fmt.Fprintf(stderr, "launch: warning: the log sink failed; the log of ref %s may be incomplete\n", ref)
	}
}

// spec turns a checked bundle, the profile and the flags into what the
// runner runs: the manifest's limits, the profile's gate and confinement,
// and the streams the profile lets the host see.
func (r *runner) spec(b *loader.Bundle, baseDir, target string, f runFlags, guestArgs []string) (runtime.Spec, error) {
	p, m := r.profile, b.Manifest
	spec := runtime.Spec{
		Module:          b.Module,
		Name:            m.Name,
		Args:            append(append([]string{}, m.Args...), guestArgs...),
		Env:             map[string]string{},
		MemoryPages:     m.Limits.MemoryPages(),
		WallTime:        m.Limits.WallTime,
		OutputBytes:     m.Limits.OutputBytes,
		OpenFiles:       m.Limits.OpenFiles,
		FileOutputBytes: m.Limits.FileOutputBytes,
		HostCalls:       p.MaxHostCalls,
		Gate:            shim.For(p),
		Protect:         p.Protected,
	}
	switch {
	case p.Seccomp && p.SeccompKills:
		spec.Seccomp = shim.SeccompKill
	case p.Seccomp, f.confine:
		spec.Seccomp = shim.SeccompErrno
	}
	if m.HostStdin(p) {
		// Otherwise the runner's stdin is /dev/null: end of file at once.
		spec.Stdin = r.env.stdin
	}
	if b.Generated {
		spec.Name = filepath.Base(target)
	}
	for k, v := range m.Env {
		spec.Env[k] = v
	}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return runtime.Spec{}, errcode.Errorf(errcode.Usage, "--env %q is not K=V", kv)
		}
		spec.Env[k] = v
	}
	for _, d := range m.Dirs {
		mnt, err := r.mountBeneath(d, baseDir)
		if err != nil {
			return runtime.Spec{}, err
		}
		spec.Dirs = append(spec.Dirs, mnt)
	}
	for _, s := range f.dirs {
		d, err := loader.ParseMount(s)
		if err != nil {
			return runtime.Spec{}, errcode.Errorf(errcode.DirInvalid, "--dir: %v", err)
		}
		spec.Dirs = append(spec.Dirs, mountFrom(d, ""))
	}
	if p.PlainLogs {
		spec.Stdout, spec.Stderr = r.env.stdout, r.env.stderr
		if f.trace {
			spec.Trace = r.env.stderr
		}
	} else {
		// Without a log recipient the host gets none of the workload's
		// output; openLog points both at the encrypted log when there is one.
		spec.Stdout, spec.Stderr = io.Discard, io.Discard
	}
	if p.DiskCache && !f.noCache {
		spec.CacheDir = f.cacheDir
		if spec.CacheDir == "" {
			if dir, err := os.UserCacheDir(); err == nil {
				spec.CacheDir = filepath.Join(dir, "ampoule", "wazero")
			}
		}
	}
	return spec, nil
}

// pathExists is the platform probe's view of the file system.
func pathExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// selectBackend resolves --backend for a profile on a platform. auto picks
// the platform's TEE and, only where the profile allows it, falls back to
// the simulator: production never does. A hardware backend needs its
// device; without it the error says what is missing.
func selectBackend(p profiles.Profile, name string, plat tee.Platform) (string, error) {
	refused := func(b string) error {
		return errcode.Errorf(errcode.BackendRefused, "the %s profile does not run on backend %s", p.Name, b).
			WithHint(fmt.Sprintf("the %s profile allows: %s", p.Name, strings.Join(p.Backends, ", ")))
	}
	hardware := func(kind, device string) (string, error) {
		if device == "" {
			return "", errcode.Errorf(errcode.TEEUnavailable, "backend %s needs %s, and this machine has none: it is not a %s guest", kind, map[string]string{"sev-snp": tee.SEVGuestDevice, "tdx": tee.TDXGuestDevice}[kind], kind)
		}
		if !p.AllowsBackend(map[string]string{"sev-snp": "snp", "tdx": "tdx"}[kind]) {
			return "", refused(kind)
		}
		return kind, nil
	}
	switch name {
	case "sim":
		if !p.AllowsBackend("sim") {
			return "", refused("sim")
		}
		return "sim", nil
	case "snp", "sev-snp":
		return hardware("sev-snp", plat.SEVGuest)
	case "tdx":
		return hardware("tdx", plat.TDXGuest)
	case "auto":
		switch plat.Kind() {
		case "sev-snp":
			return hardware("sev-snp", plat.SEVGuest)
		case "tdx":
			return hardware("tdx", plat.TDXGuest)
		}
		if p.AllowsBackend("sim") {
			return "sim", nil
		}
		return "", errcode.Errorf(errcode.TEEUnavailable, "no TEE on this machine (no %s, %s or %s), and the %s profile never falls back to the simulator", tee.SEVGuestDevice, tee.TDXGuestDevice, tee.ConfigfsTSM, p.Name)
	}
	return "", errcode.Errorf(errcode.BackendUnknown, "no backend %q", name).WithHint("the backends are: auto, sim, snp, tdx")
}

// mountBeneath opens a manifest's mount. A relative host path is resolved
// by the kernel beneath the bundle's directory, so that a link the host put
// there (data -> /) cannot hand the guest a directory outside the bundle,
// and the directory reaches the runner as that descriptor. The run closes it
// when it ends.
func (r *runner) mountBeneath(d loader.Mount, baseDir string) (runtime.Mount, error) {
	mnt := mountFrom(d, baseDir)
	if filepath.IsAbs(d.Host) || baseDir == "" {
		return mnt, nil
	}
	if r.bundleRoot == nil {
		root, err := shim.OpenRoot(baseDir)
		if err != nil {
			return runtime.Mount{}, errcode.Errorf(errcode.DirInvalid, "the bundle's directory %s: %v", baseDir, err)
		}
		r.bundleRoot = root
		r.closers = append(r.closers, func() { root.Close() })
	}
	root, err := shim.OpenRootBeneath(r.bundleRoot, d.Host)
	if err != nil {
		e := errcode.Errorf(errcode.DirInvalid, "mount %s::%s: %v", d.Host, d.Guest, err)
		if errors.Is(err, shim.ErrEscape) {
			e = e.WithHint("a manifest's relative mount must be a directory inside the bundle's directory, not a link leading out of it")
		}
		return runtime.Mount{}, e
	}
	r.closers = append(r.closers, func() { root.Close() })
	mnt.Root = root
	return mnt, nil
}

// close releases what the run held open.
func (r *runner) close() {
	for _, c := range r.closers {
		c()
	}
	r.closers, r.bundleRoot = nil, nil
}

// mountFrom resolves a relative host path against base (or the working
// directory when base is empty).
func mountFrom(d loader.Mount, base string) runtime.Mount {
	host := d.Host
	if !filepath.IsAbs(host) && base != "" {
		host = filepath.Join(base, host)
	}
	if abs, err := filepath.Abs(host); err == nil {
		host = abs
	}
	return runtime.Mount{Host: host, Guest: d.Guest, Writable: d.Writable}
}

// openBundle reads a bundle directory, a .tar bundle or a bare module. It
// returns the directory that relative host paths in the manifest are
// resolved against.
func openBundle(target string) (*loader.Bundle, string, error) {
	st, err := os.Stat(target)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, "", errcode.Errorf(errcode.BundleNotFound, "%s does not exist", target)
		}
		return nil, "", errcode.Errorf(errcode.BundleUnreadable, "%v", err)
	}
	if st.IsDir() {
		b, err := loader.FromFS(regfile.DirFS(target), target)
		return b, target, err
	}
	f, _, err := regfile.Open(target) // a FIFO or a device is refused, never read
	if errors.Is(err, regfile.ErrNotRegular) {
		return nil, "", errcode.Errorf(errcode.BundleMalformed, "%v", err).
			WithHint("pass a bundle directory, a .tar bundle or (debug only) a .wasm module, as a regular file")
	}
	if err != nil {
		return nil, "", errcode.Errorf(errcode.BundleUnreadable, "%v", err)
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", errcode.Errorf(errcode.BundleUnreadable, "%v", err)
	}
	if loader.IsWasm(head[:n]) || strings.HasSuffix(target, ".wasm") {
		data, err := io.ReadAll(io.LimitReader(f, loader.MaxModuleBytes+1))
		if err != nil {
			return nil, "", errcode.Errorf(errcode.BundleUnreadable, "%v", err)
		}
		b, err := loader.FromModule(data, target)
		return b, "", err
	}
	b, err := loader.FromTar(f, target)
	return b, filepath.Dir(target), err
}
