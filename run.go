package ampoule

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/codecache"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/sealed"
	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/shim/audit"
	"github.com/ampoule-run/ampoule/tee"
)

// The fixed warnings a run may show the host.
const (
	// WarningSim is the simulator's: nothing protects the run.
	WarningSim = "backend sim is a software simulator: nothing protects this run from the host (insecure)"
	// WarningWithheld is a static run's without a log recipient.
	WarningWithheld = "the manifest names no log_recipient (or log_recipients), so the workload's output is withheld"
	// WarningTEEDebug is a run's in a TEE whose host may debug it, under a
	// profile that allows that.
	WarningTEEDebug = "the TEE's debug policy bit is set: its host may read this run's memory"
	// WarningLogSink is a run's whose log sink failed.
	WarningLogSink = "the log sink failed; the log of ref %s may be incomplete"
	// WarningInitDataUnbound is a run's on the simulator handed init-data:
	// no report field ties the document to the machine.
	WarningInitDataUnbound = "backend sim has no HOST_DATA or MRCONFIGID: nothing binds the init-data to this machine"
)

// run is one run: its settings, profile and correlation id, and what it
// makes once (its backend, evidence, runtime key, the broker's nonce).
type run struct {
	cfg     Config
	profile profiles.Profile
	ref     string
	kind    string
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
	// What the broker released to the run, asked once (release).
	released   map[string][]byte
	releaseErr error
	// kbsSession is the run's session with the broker, opened by
	// challenge.
	kbsSession *kbs.Session
	// also holds failures beside the run's own.
	also []error
	// The fixed warnings given before the tenant's log opened, and the
	// log's runtime logger once it has (warn).
	warnMu    sync.Mutex
	warned    []string
	tenantLog hclog.Logger
	// bundleRoot is the bundle's directory, beneath which the manifest's
	// mounts are opened; closers release them when the run ends.
	bundleRoot *shim.Root
	// archive is set for a .tar bundle, whose relative dirs are beside it.
	archive bool
	closers []func()
	// bundle is the run's bundle, once read: a broker's audit trail names
	// it.
	bundle *loader.Bundle
}

func newRun(p profiles.Profile, cfg Config) *run {
	ref := cfg.Ref
	if ref == "" {
		ref = NewRef()
	}
	return &run{cfg: cfg, profile: p, ref: ref, be: cfg.TEE}
}

// refusals are the profile's refusals of what the caller asks, made
// before anything is read.
func (r *run) refusals() error {
	p, c := r.profile, r.cfg
	if !p.AllowHostOverrides && (len(c.Dirs) > 0 || len(c.Env) > 0 || len(c.Args) > 0 || c.TraceCalls || c.Audit) {
		return errcode.Errorf(errcode.HostOverrideRefused, "the %s profile runs the manifest as measured; --dir, --env, --trace-calls, --audit and arguments after -- are refused", p.Name).Host()
	}
	if p.Protected {
		return protectedHere()
	}
	return nil
}

// selectBackend decides the run's backend kind.
func (r *run) selectBackend() error {
	if r.be != nil {
		r.kind = r.be.Name()
		if !r.profile.AllowsBackend(r.kind) {
			return errcode.Errorf(errcode.BackendRefused, "the %s profile does not run on backend %s", r.profile.Name, r.kind).
				WithHint(fmt.Sprintf("the %s profile allows: %s", r.profile.Name, strings.Join(r.profile.Backends, ", "))).Host()
		}
		return nil
	}
	plat := tee.Probe(pathExists)
	if r.cfg.Platform != nil {
		plat = *r.cfg.Platform
	}
	name := r.cfg.Backend
	if name == "" {
		name = r.profile.DefaultBackend
	}
	kind, err := tee.Select(name, plat, r.profile.Name, r.profile.Backends)
	r.kind = kind
	return err
}

// open reads the bundle and checks it against the profile and the config.
func (r *run) open(path string) (*loader.Bundle, error) {
	p := r.profile
	b, err := loader.OpenKnown(path, r.knownModules())
	if err != nil {
		return nil, err
	}
	if b.Generated && !p.AllowBareModule {
		return nil, errcode.Errorf(errcode.BareModuleRefused, "%s is a bare module; the %s profile runs only bundles", path, p.Name)
	}
	m := b.Manifest
	if !m.AllowsProfile(p.Name) {
		return nil, errcode.Errorf(errcode.ProfileNotAllowed, "%s allows the profiles %s, not %s", b.Source, strings.Join(m.Profiles, ", "), p.Name)
	}
	if r.cfg.SealedStore != "" && m.Sealed == nil {
		return nil, errcode.Errorf(errcode.Usage, "--sealed: %s has no [sealed] mount", b.Source).
			WithHint("add a [sealed] table with a mount to ampoule.toml, or drop --sealed")
	}
	if r.cfg.SealedHandOn != nil && (m.Sealed == nil || len(m.Sealed.AcceptFrom) == 0 || m.Sealed.Key == loader.SealedKeyBroker) {
		return nil, errcode.Errorf(errcode.Usage, "--hand-on: %s accepts no earlier version's TEE-sealed store", b.Source).
			WithHint(`a hand-on is for a manifest whose [sealed] accept_from names an earlier version, under key = "tee"; drop --hand-on`)
	}
	return b, nil
}

func (r *run) run(ctx context.Context, path string) (res Result, err error) {
	if r.cfg.server == nil {
		// While the bundle is read: the first process start's check.
		go sandbox.PrepareStart()
	}
	res, b, err := r.begin(path)
	if err != nil {
		return res, err
	}
	r.bundle = b
	// Measured lazily: a run that needs it no sooner measures while the
	// runner starts. The module is hashed once, for the measurement and
	// for the runner, which names its kept inspection by the digest.
	digest := sync.OnceValue(func() [48]byte { return r.moduleDigest(b) })
	measurement := sync.OnceValue(func() loader.Measurement {
		return loader.MeasureParts(digest(), b.Manifest.Canonical(), r.profile.Name)
	})
	defer func() { res.Measurement = measurement() }()
	defer r.close()
	spec, err := r.spec(b, path)
	if err != nil {
		return res, err
	}
	spec.ModuleDigest = digest
	exe, err := r.runnerExe()
	if err != nil {
		return res, err
	}
	var (
		logw    *runLog
		log     hclog.Logger
		openLog func() error
	)
	if r.opensLogLater(b.Manifest) {
		// Opened by the runner's BeforeStart hook, while the runner
		// starts and loads its code; the module's hash begins now, beside
		// the runner's start.
		go digest()
		later := newLaterLog()
		log, spec.Stdout, spec.Stderr = later, &later.stdout, &later.stderr
		openLog = func() error {
			streams := spec
			streams.Stdout, streams.Stderr = io.Discard, io.Discard
			l, err := r.openLog(ctx, b, &streams, measurement)
			if err != nil {
				return err
			}
			logw = l
			to := r.logger(l)
			r.logWarnings(to)
			for _, w := range l.warnings {
				to.Warn(w)
			}
			later.opened(to, streams.Stdout, streams.Stderr)
			return nil
		}
	} else {
		if logw, err = r.openLog(ctx, b, &spec, measurement); err != nil {
			return res, err
		}
		log = r.logger(logw)
		if logw != nil {
			r.logWarnings(log)
			for _, w := range logw.warnings {
				log.Warn(w)
			}
		}
	}
	// The secrets before anything runs: a run whose broker refuses one
	// stops here, and the runner gets them in its spec, never on a disk.
	if spec.Secrets, err = r.secrets(ctx, b.Manifest, measurement, log); err != nil {
		return res, r.ended(logw, log, 0, err)
	}
	defer func() {
		for _, v := range spec.Secrets {
			clear(v)
		}
	}()
	var sm *sealed.Mount
	if m := b.Manifest; m.Sealed != nil {
		// The sealed mount is unpacked before the runner starts: its
		// preopens must exist. This measures before compiling, which the
		// other runs overlap.
		if sm, err = r.openSealed(ctx, m, measurement(), &spec, log); err != nil {
			return res, r.ended(logw, log, 0, err)
		}
		// Whatever way the run ends, the plaintext goes (SealBack removes
		// it too; removing is idempotent).
		defer sm.Remove()
	}
	var code *codecache.Cache
	if r.cfg.server == nil {
		// Found once the runner has started: finding it hashes the module
		// (for the measurement too), which then overlaps the runner's start.
		spec.CacheDirFunc = func() string {
			code = r.codeCache(ctx, b, &spec, measurement, log)
			return spec.CacheDir
		}
	} else {
		code = r.codeCache(ctx, b, &spec, measurement, log)
	}
	out, err := r.supervise(ctx, exe, spec, b.Manifest, sm, openLog, func() bool { return logw != nil }, log, measurement, &res)
	r.commitCode(code, log)
	res.ExitCode, res.Envelope = out.ExitCode, r.envelope
	err = r.sealBack(sm, err, log)
	if err == nil && out.ExitCode != 0 && !r.profile.PassExitCode {
		err = errcode.Errorf(errcode.WorkloadExit, "the workload exited with status %d", out.ExitCode)
	}
	return res, r.ended(logw, log, out.ExitCode, err)
}

// opensLogLater says whether the run opens its encrypted log once its
// runner has started rather than before: a run that has a log and needs
// it for nothing before the runner exists. A run with secrets or a broker's
// sealing key asks the broker first, into the log, with a nonce the log's
// evidence carries; a sealed mount is unpacked, logged, before the runner
// starts; a Server's warm runner has started already.
func (r *run) opensLogLater(m *loader.Manifest) bool {
	return !r.profile.PlainLogs && r.cfg.server == nil && m.Sealed == nil &&
		len(brokerResources(m)) == 0 && len(m.Recipients()) > 0
}

// begin makes the refusals, reads the bundle and picks the backend. The
// bundle comes first: a missing path or a profile the manifest does not
// allow is the error to fix, whatever the backend.
func (r *run) begin(path string) (Result, *loader.Bundle, error) {
	var res Result
	if err := r.refusals(); err != nil {
		return res, nil, err
	}
	b, err := r.open(path)
	if err != nil {
		return res, nil, err
	}
	if err := r.selectBackend(); err != nil {
		return res, nil, err
	}
	res.Backend, res.Insecure = r.kind, r.kind == tee.KindSim
	if res.Insecure {
		r.warn(WarningSim)
	}
	if err := r.namedByInitData(b); err != nil {
		return res, nil, err
	}
	return res, b, nil
}

// runnerExe is the executable started as the runner.
func (r *run) runnerExe() (string, error) {
	if r.cfg.Runner != "" {
		return r.cfg.Runner, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", errcode.Errorf(errcode.Internal, "locating this program for the runner: %v", err)
	}
	return exe, nil
}

// supervise runs the spec in the runner. While the runner compiles, the
// supervisor attests and logs (started) and attaches the audit; the audit
// counts what the runner does once it has compiled: the calls its seccomp
// filter will judge.
func (r *run) supervise(ctx context.Context, exe string, spec sandbox.Spec, m *loader.Manifest, sm *sealed.Mount, openLog func() error, logged func() bool, log hclog.Logger, measurement func() loader.Measurement, res *Result) (sandbox.Result, error) {
	var aud *audit.Audit
	measure := func(runner int) error {
		if openLog != nil {
			if err := openLog(); err != nil {
				return err
			}
		}
		if err := r.started(m, sm, measurement(), logged(), log); err != nil {
			return err
		}
		if r.cfg.Audit {
			var err error
			if aud, err = audit.Start(uint32(runner)); err != nil {
				r.warn("%v; the run goes on without it", err)
			}
		}
		if r.cfg.BeforeStart != nil {
			r.cfg.BeforeStart(runner)
		}
		return nil
	}
	ready := func() {
		if aud != nil {
			aud.Reset()
		}
	}
	var compiledOnce sync.Once
	progressDone := func() {}
	if r.cfg.Compiling != nil {
		if d := r.cfg.Compiling(m.Module, len(spec.Module)); d != nil {
			progressDone = d
		}
	}
	endProgress := func() { compiledOnce.Do(progressDone) }
	defer endProgress()
	compiled := func(cache string) {
		endProgress()
		log.Info("compiled", "module", m.Module, "bytes", len(spec.Module), "cache", cache)
	}
	out, err := r.startRunner(ctx, exe, spec, m, measurement, sandbox.Hooks{BeforeStart: measure, Compiled: compiled, Ready: ready, WaitExit: sm != nil})
	if aud != nil {
		var aerr error
		if res.Audit, aerr = aud.Counts(); aerr != nil {
			r.warn("reading the audit: %v", aerr)
		}
		aud.Close()
	}
	return out, err
}

// ended records the run's end in the tenant's log, if it has one, and
// closes the log.
func (r *run) ended(logw *runLog, log hclog.Logger, status uint32, err error) error {
	if logw == nil {
		return err
	}
	if err != nil {
		log.Error("run failed", "ref", r.ref, "detail", strings.TrimSpace(errcode.Detailed(err)))
	} else {
		log.Info("run ended", "ref", r.ref, "status", status)
	}
	// A warning from here on (the sink failing) has no log to go to.
	r.logWarnings(nil)
	logw.finish(r)
	return err
}

// started runs in the supervisor while the runner compiles: it logs what
// runs and, in a TEE or with a log, attests before the first instruction.
// The launcher judges its own evidence (a TEE its host may debug is
// refused where the profile says so), and the tenant's log opens with it,
// so that what it records can be tied to what ran, where.
func (r *run) started(m *loader.Manifest, sm *sealed.Mount, mm loader.Measurement, logged bool, log hclog.Logger) error {
	backendNote := r.kind
	if r.kind == tee.KindSim {
		backendNote += " (insecure)"
	}
	log.Info("running", "ref", r.ref, "bundle", m.Name, "version", m.Version, "profile", r.profile.Name, "backend", backendNote, "measurement", mm.String())
	if logged || r.kind != tee.KindSim {
		env, err := r.attest(context.Background(), mm, nil, func(msg string) { log.Warn(msg) })
		if err != nil {
			return err
		}
		if logged {
			data, err := json.Marshal(env)
			if err != nil {
				return errcode.Errorf(errcode.Internal, "%v", err)
			}
			log.Info("evidence", "ref", r.ref, "envelope", string(data))
		}
	}
	if sm != nil {
		log.Info("sealed mount opened", "guest", m.Sealed.Guest, "store", sm.File, "entries", sm.Entries, "new", !sm.Found)
	}
	return nil
}

// openSealed takes the run's sealing key and opens its sealed mount,
// writable at the manifest's guest path.
func (r *run) openSealed(ctx context.Context, m *loader.Manifest, mm loader.Measurement, spec *sandbox.Spec, log hclog.Logger) (*sealed.Mount, error) {
	keys, err := r.sealedKeys(ctx, m, mm, log)
	if err != nil {
		return nil, err
	}
	file := r.cfg.SealedStore
	if file == "" {
		if file, err = DefaultSealedFile(m.Name, r.profile.Name); err != nil {
			return nil, err
		}
	}
	sm, err := sealed.OpenMount(file, keys, m.Sealed.MaxBytes)
	if err != nil {
		return nil, err
	}
	if sm.From != nil {
		log.Warn("sealed mount taken over: the store of an earlier version that [sealed] accept_from names opened, and is sealed back as this run's own, which that version does not open", "store", file, "from", hexOf(*sm.From), "measurement", mm.String())
	}
	// The workspace is memory: what the workload writes there while it
	// runs is bounded by max_size too, not only what it leaves at the end.
	spec.Dirs = append(spec.Dirs, sandbox.Mount{Host: sm.Workspace, Guest: m.Sealed.Guest, Writable: true, MaxBytes: sm.MaxBytes()})
	return sm, nil
}

// sealBack seals the mount back once the runner has exited, whatever the
// run's outcome runErr: a workload that failed keeps what it wrote, as it
// would on a disk. A workload that wrote more than max_size while it ran
// has nothing of this run sealed, and the old store stays.
func (r *run) sealBack(sm *sealed.Mount, runErr error, log hclog.Logger) error {
	if sm == nil {
		return runErr
	}
	if runErr != nil && errcode.From(runErr).Code == errcode.SealedSizeLimit {
		sm.Remove()
		return runErr
	}
	n, err := sm.SealBack()
	switch {
	case err == nil:
		log.Info("sealed mount sealed", "store", sm.File, "entries", n)
	case runErr == nil:
		return err
	default:
		log.Error("sealing the sealed mount failed", "ref", r.ref, "detail", strings.TrimSpace(errcode.Detailed(err)))
		r.also = append(r.also, err)
	}
	return runErr
}

// spec turns a checked bundle, the profile and the config into what the
// runner runs: the manifest's limits, the profile's gate and confinement,
// and the streams the profile lets the host see.
func (r *run) spec(b *loader.Bundle, path string) (sandbox.Spec, error) {
	p, m, c := r.profile, b.Manifest, r.cfg
	spec := sandbox.Spec{
		Module:          b.Module,
		Name:            m.Name,
		Args:            append(append([]string{}, m.Args...), c.Args...),
		Env:             map[string]string{},
		MemoryPages:     m.Limits.MemoryPages(),
		WallTime:        m.Limits.WallTime,
		OutputBytes:     m.Limits.OutputBytes,
		OpenFiles:       m.Limits.OpenFiles,
		FileOutputBytes: m.Limits.FileOutputBytes,
		HostCalls:       p.MaxHostCalls,
		Gate:            shim.Gate(),
		Protect:         p.Protected,
		InterpretFirst:  c.InterpretFirst,
	}
	spec.Seccomp = seccompAction(p, c.Confine)
	if m.HostStdin(p) && c.Stdin != nil {
		// Otherwise the runner's stdin is /dev/null: end of file at once.
		spec.Stdin = c.Stdin
	}
	if b.Generated {
		spec.Name = filepath.Base(path)
	}
	for k, v := range m.Env {
		spec.Env[k] = v
	}
	for k, v := range c.Env {
		if k == "" || strings.Contains(k, "=") {
			return sandbox.Spec{}, errcode.Errorf(errcode.Usage, "the environment variable %q has no valid name", k)
		}
		spec.Env[k] = v
	}
	var err error
	r.archive = b.Archive
	spec.Entry = m.Entry
	if spec.Dirs, err = r.mounts(m, b.Dir); err != nil {
		return sandbox.Spec{}, err
	}
	if p.PlainLogs {
		spec.Stdout, spec.Stderr = orDiscard(c.Stdout), orDiscard(c.Stderr)
		if c.TraceCalls {
			spec.Trace = spec.Stderr
		}
	} else {
		// Without a log recipient the host gets none of the workload's
		// output; openLog points both at the encrypted log when there is one.
		spec.Stdout, spec.Stderr = orDiscard(nil), orDiscard(nil)
	}
	if c.MeasuredCode != "" {
		if err := checkMeasuredCode(c.MeasuredCode); err != nil {
			return sandbox.Spec{}, err
		}
		spec.CacheDir = c.MeasuredCode
	} else if p.DiskCache && !c.NoCache {
		spec.CacheDir = c.CacheDir
		if spec.CacheDir == "" {
			if dir, err := DefaultCacheDir(); err == nil {
				spec.CacheDir = dir
			}
		}
	}
	return spec, nil
}

// seccompAction is the runner's confinement: the profile's, or with
// confine EPERM where the profile has none.
func seccompAction(p profiles.Profile, confine bool) shim.SeccompAction {
	switch {
	case p.Seccomp && p.SeccompKills:
		return shim.SeccompKill
	case p.Seccomp, confine:
		return shim.SeccompErrno
	}
	return shim.SeccompOff
}

// mounts are the manifest's mounts, opened beneath the bundle's
// directory, then the caller's.
func (r *run) mounts(m *loader.Manifest, dir string) ([]sandbox.Mount, error) {
	var out []sandbox.Mount
	for _, d := range m.Dirs {
		mnt, err := r.mountBeneath(d, dir)
		if err != nil {
			return nil, err
		}
		out = append(out, mnt)
	}
	for _, d := range r.cfg.Dirs {
		out = append(out, mountFrom(d, ""))
	}
	return out, nil
}

// mountBeneath opens a manifest's mount. A relative host path is resolved
// by the kernel beneath the bundle's directory, so that a link the host put
// there (data -> /) cannot hand the guest a directory outside the bundle,
// and the directory reaches the runner as that descriptor. The run closes it
// when it ends.
func (r *run) mountBeneath(d loader.Mount, baseDir string) (sandbox.Mount, error) {
	mnt := mountFrom(d, baseDir)
	if filepath.IsAbs(d.Host) || baseDir == "" {
		return mnt, nil
	}
	if r.bundleRoot == nil {
		root, err := shim.OpenRoot(baseDir)
		if err != nil {
			return sandbox.Mount{}, errcode.Errorf(errcode.DirInvalid, "the bundle's directory %s: %v", baseDir, err)
		}
		r.bundleRoot = root
		r.closers = append(r.closers, func() { root.Close() })
	}
	root, err := shim.OpenRootBeneath(r.bundleRoot, d.Host)
	if err != nil {
		e := errcode.Errorf(errcode.DirInvalid, "mount %s::%s: %v", d.Host, d.Guest, err)
		switch {
		case errors.Is(err, shim.ErrEscape):
			e = e.WithHint("a manifest's relative mount must be a directory inside the bundle's directory, not a link leading out of it")
		case r.archive:
			e = e.WithHint(fmt.Sprintf("a .tar bundle's relative dirs are host directories beside the archive (%s), not entries inside it: make %s there, or unpack the archive and run the directory", filepath.Join(baseDir, d.Host), d.Host))
		}
		return sandbox.Mount{}, e
	}
	r.closers = append(r.closers, func() { root.Close() })
	mnt.Root = root
	return mnt, nil
}

// close releases what the run held open.
func (r *run) close() {
	for _, c := range r.closers {
		c()
	}
	r.closers, r.bundleRoot = nil, nil
}

// mountFrom resolves a relative host path against base (or the working
// directory when base is empty).
func mountFrom(d loader.Mount, base string) sandbox.Mount {
	host := d.Host
	if !filepath.IsAbs(host) && base != "" {
		host = filepath.Join(base, host)
	}
	if abs, err := filepath.Abs(host); err == nil {
		host = abs
	}
	return sandbox.Mount{Host: host, Guest: d.Guest, Writable: d.Writable}
}

// pathExists is the platform probe's view of the file system.
func pathExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// DefaultSealedFile is where a bundle's sealed store lives when none is
// named: one per bundle name and profile, in the user's state directory
// ($XDG_STATE_HOME/ampoule/sealed, made if missing).
func DefaultSealedFile(name, profile string) (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", errcode.Errorf(errcode.Usage, "no home directory for the sealed store: %v", err).WithHint("pass --sealed FILE")
		}
		dir = filepath.Join(home, ".local", "state")
	}
	dir = filepath.Join(dir, "ampoule", "sealed")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", errcode.Errorf(errcode.SealedStoreIO, "%v", err).WithHint("pass --sealed FILE in a writable directory")
	}
	return filepath.Join(dir, name+"."+profile+".sealed"), nil
}

// brokerError gives a broker failure its registered code.
func brokerError(err error, url string) error {
	switch {
	case errors.Is(err, broker.ErrNotGranted):
		return errcode.Errorf(errcode.SecretRefused, "%s: %v", url, err)
	case errors.Is(err, broker.ErrRefused), errors.Is(err, kbs.ErrRefused):
		return errcode.Errorf(errcode.BrokerRefused, "%s: %v", url, err)
	case errors.Is(err, broker.ErrProtocol), errors.Is(err, kbs.ErrMessage), errors.Is(err, kbs.ErrJWE), errors.Is(err, kbs.ErrJWK):
		return errcode.Errorf(errcode.BrokerAnswerInvalid, "%s: %v", url, err)
	}
	return errcode.Errorf(errcode.BrokerUnavailable, "%s: %v", url, err)
}

// orDiscard is w, or io.Discard for nil.
func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
