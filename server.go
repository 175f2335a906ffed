package ampoule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sandbox"
)

// ServerConfig bounds a Server. The zero value of each field is a default.
type ServerConfig struct {
	// MaxRuns is how many runs go at once; 0 is the number of CPUs.
	MaxRuns int
	// MaxQueue is how many runs may wait for one of MaxRuns beyond those
	// going; past it a run is refused at once with E4013 server-busy. 0 is
	// 4×MaxRuns; a negative value is none.
	MaxQueue int
	// Spare is how many idle warm runners are kept for each bundle
	// (measurement, profile, backend and limits) once it has run: a run
	// takes one that has compiled, while its replacement compiles. 0 is 2.
	Spare int
	// Runner is the executable started as runners (it must call
	// RunnerMain) for the runs whose Config names none, as Config.Runner;
	// "" is this program's own.
	Runner string
	// WarmBudget bounds the resident memory of the idle warm runners
	// together, in bytes; past it the least recently used are killed. 0 is
	// DefaultWarmBudget; a negative value keeps no warm runners.
	WarmBudget int64
}

// DefaultWarmBudget is a Server's default memory budget for idle warm
// runners: 512 MiB, some ten runners of a Go guest.
const DefaultWarmBudget = 512 << 20

// Server runs bundles as Run does, with runners kept warm: after a run,
// one runner for the same bundle, profile, backend and limits is started
// in the background and compiles its module (from the compilation cache)
// while idle, so that the next such run is handed a runner that waits
// only to be attested and told to start. Everything of a run (its ref,
// evidence with its nonce and runtime key, log, warnings) is made by that
// run alone, exactly as Run makes it; a warm runner holds only the
// compiled module and the measured spec, and serves one run. Runs with
// mounts (a manifest's or --dir) or a [sealed] mount start their runner
// when they run, as Run does.
//
// A Server bounds what it takes: MaxRuns at once, MaxQueue waiting, the
// rest refused with E4013; idle runners within WarmBudget.
type Server struct {
	cfg ServerConfig

	slots chan struct{} // one per run going
	admit chan struct{} // one per run going or waiting

	mu       sync.Mutex
	draining bool
	idle     map[string][]*warmRunner
	warmRSS  int64
	runs     sync.WaitGroup // runs and warm-ups going
	warmRuns atomic.Int64
	// starting counts, per key, the replacements being started (their
	// process not yet there); changed is signalled when one is in the pool
	// or failed.
	starting map[string]int
	changed  *sync.Cond
	// digests keeps the modules measured lately, to measure a request's
	// module without hashing it again when its bytes are the same.
	digests moduleDigests
}

// warmRunner is an idle warm runner in a Server's pool.
type warmRunner struct {
	key      string
	w        *sandbox.Warm
	rss      int64
	lastUsed time.Time
}

// NewServer returns a Server bounded by cfg.
func NewServer(cfg ServerConfig) *Server {
	if cfg.MaxRuns <= 0 {
		cfg.MaxRuns = runtime.NumCPU()
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 4 * cfg.MaxRuns
	}
	if cfg.MaxQueue < 0 {
		cfg.MaxQueue = 0
	}
	if cfg.Spare <= 0 {
		cfg.Spare = 2
	}
	if cfg.WarmBudget == 0 {
		cfg.WarmBudget = DefaultWarmBudget
	}
	s := &Server{cfg: cfg, slots: make(chan struct{}, cfg.MaxRuns), admit: make(chan struct{}, cfg.MaxRuns+cfg.MaxQueue),
		idle: map[string][]*warmRunner{}, starting: map[string]int{}}
	s.changed = sync.NewCond(&s.mu)
	return s
}

// errBusy is the refusal of a run the server has no room for.
func errBusy(why string) error {
	return errcode.Errorf(errcode.ServerBusy, "%s", why).Host()
}

// Run runs the bundle at path as Run(ctx, path, cfg) does, with the same
// refusals, result and errors, taking a warm runner where one waits for
// it. A run the server has no room for (its queue is full, or it is
// draining) is refused with E4013 server-busy before anything is read.
func (s *Server) Run(ctx context.Context, path string, cfg Config) (Result, error) {
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		return s.refused(cfg, errBusy("the server is stopping"))
	}
	select {
	case s.admit <- struct{}{}:
	default:
		s.mu.Unlock()
		return s.refused(cfg, errBusy(fmt.Sprintf("%d runs are going and %d waiting, the server's bounds", s.cfg.MaxRuns, s.cfg.MaxQueue)))
	}
	s.runs.Add(1)
	s.mu.Unlock()
	defer s.runs.Done()
	defer func() { <-s.admit }()
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return s.refused(cfg, errcode.Errorf(errcode.Interrupted, "the run was stopped while it waited for the server: %v", context.Cause(ctx)))
	}
	defer func() { <-s.slots }()
	cfg.server = s
	if cfg.Runner == "" {
		cfg.Runner = s.cfg.Runner
	}
	return Run(ctx, path, cfg)
}

// refused is a run's result when the server did not start it, its error
// hidden as Run hides its own.
func (s *Server) refused(cfg Config, err error) (Result, error) {
	p, perr := profiles.Get(cfg.Profile)
	if perr != nil {
		return Result{Ref: cfg.Ref}, perr
	}
	r := newRun(p, cfg)
	return Result{Ref: r.ref, Profile: p}, r.hide(err)
}

// Shutdown drains the server: it refuses new runs (E4013), waits for the
// runs going and waiting to end (or ctx to be done), and kills the idle
// runners.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.runs.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = context.Cause(ctx)
	}
	s.mu.Lock()
	for k, ws := range s.idle {
		for _, w := range ws {
			w.w.Kill()
		}
		delete(s.idle, k)
	}
	s.warmRSS = 0
	s.mu.Unlock()
	return err
}

// ServerStats is what a Server holds at one moment.
type ServerStats struct {
	// Idle is the number of idle warm runners; IdleRSS their resident
	// memory together, as measured once each had compiled.
	Idle    int
	IdleRSS int64
	// Ready is how many of the idle runners have compiled.
	Ready int
	// WarmRuns counts the runs handed a warm runner so far.
	WarmRuns int64
}

// Stats says what the server holds now.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := ServerStats{IdleRSS: s.warmRSS, WarmRuns: s.warmRuns.Load()}
	for _, ws := range s.idle {
		st.Idle += len(ws)
		for _, w := range ws {
			if w.rss > 0 {
				st.Ready++
			}
		}
	}
	return st
}

// warmable says whether a run's runner may be a warm one: it has no
// mounts (their directories are opened as the run starts) and no sealed
// mount.
func warmable(m *loader.Manifest, spec sandbox.Spec) bool {
	// Secrets are released to one run's attestation and travel in its
	// runner's spec: a runner made ahead of a run would hold another
	// run's, so a run with secrets starts its own.
	return m.Sealed == nil && len(spec.Dirs) == 0 && len(m.Secrets) == 0 && len(spec.Secrets) == 0
}

// poolKey is what makes two runs' runners the same: the measurement, the
// profile, the backend and everything the runner is given before it
// starts (arguments, environment, limits, gate, confinement, cache).
func poolKey(r *run, mm loader.Measurement, spec sandbox.Spec) string {
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	data, err := json.Marshal(struct {
		Measurement, Profile, Backend, Name, CacheDir string
		Args, Env                                     []string
		Pages                                         uint32
		Wall, Compile                                 time.Duration
		Output, FileOutput                            int64
		OpenFiles                                     int
		HostCalls                                     uint64
		Gate                                          any
		Seccomp                                       any
		Trace, Protect, Stdin, InterpretFirst         bool
	}{mm.String(), r.profile.Name, r.kind, spec.Name, spec.CacheDir, spec.Args, env, spec.MemoryPages,
		spec.WallTime, spec.CompileTime, spec.OutputBytes, spec.FileOutputBytes, spec.OpenFiles, spec.HostCalls,
		spec.Gate, spec.Seccomp, spec.Trace != nil, spec.Protect, spec.Stdin != nil, spec.InterpretFirst})
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return string(sum[:])
}

// runner is the run's "start a runner and supervise it" under a server:
// a warm runner for the run's key if one waits, else a runner started now
// as Run starts it; once the run's runner has compiled, a replacement is
// warmed for the next run of the key.
func (s *Server) runner(ctx context.Context, r *run, exe string, spec sandbox.Spec, m *loader.Manifest, measurement func() loader.Measurement, hooks sandbox.Hooks) (sandbox.Result, error) {
	if !warmable(m, spec) {
		return sandbox.Supervise(ctx, exe, spec, hooks)
	}
	key := poolKey(r, measurement(), spec)
	if key == "" {
		return sandbox.Supervise(ctx, exe, spec, hooks)
	}
	compiled := false
	ready := hooks.Ready
	hooks.Ready = func() {
		compiled = true
		if ready != nil {
			ready()
		}
	}
	defer func() {
		if !compiled {
			return
		}
		// In the background: the run's result does not wait for them.
		s.mu.Lock()
		n := s.cfg.Spare - len(s.idle[key]) - s.starting[key]
		if s.draining || s.cfg.WarmBudget < 0 {
			n = 0
		}
		s.starting[key] += max(n, 0)
		s.mu.Unlock()
		for range n {
			s.runs.Add(1)
			go func() {
				defer s.runs.Done()
				s.warm(key, exe, spec)
			}()
		}
	}()
	for w := s.take(key); w != nil; w = s.take(key) {
		out, err := w.Run(ctx, spec.Stdin, spec.Stdout, spec.Stderr, hooks)
		if errors.Is(err, sandbox.ErrWarmGone) {
			// It died idle, before anything of this run: take another.
			continue
		}
		s.warmRuns.Add(1)
		return out, err
	}
	return sandbox.Supervise(ctx, exe, spec, hooks)
}

// take takes an idle warm runner for key, or returns nil.
func (s *Server) take(key string) *sandbox.Warm {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A replacement being started is a process start away: waiting for
	// it is no longer than starting one.
	for len(s.idle[key]) == 0 && s.starting[key] > 0 {
		s.changed.Wait()
	}
	for ws := s.idle[key]; len(ws) > 0; ws = s.idle[key] {
		// One that has compiled, else the oldest: the likeliest to
		// compile first.
		w := ws[0]
		for _, c := range ws {
			if c.rss > 0 {
				w = c
				break
			}
		}
		s.remove(w)
		if w.w.Alive() {
			return w.w
		}
		w.w.Kill()
	}
	return nil
}

// warm starts a replacement runner for key (in the background, counted
// in s.starting by its caller), unless the key has Spare idle runners by
// then or the server is draining. The runner is in the pool from its start: a run
// that takes it while it compiles waits for it, as it would for its own.
// Its resident memory counts against the budget once it has compiled.
func (s *Server) warm(key, exe string, spec sandbox.Spec) {
	// The caller counted this start in s.starting.
	started := func() {
		s.starting[key]--
		if s.starting[key] == 0 {
			delete(s.starting, key)
		}
		s.changed.Broadcast()
	}
	// The run's own streams are not the replacement's.
	spec.Stdin, spec.Stdout, spec.Stderr, spec.Trace = nil, nil, nil, traceMarker(spec.Trace)
	// At idle priority, where the server can give a runner the ordinary
	// policy back when a run takes it: a replacement's start and load
	// (tens of ms of CPU) then take nothing from the runs going.
	w, err := sandbox.PrepareIdle(exe, spec)
	s.mu.Lock()
	started()
	if err != nil {
		s.mu.Unlock()
		return
	}
	if s.draining || len(s.idle[key]) >= s.cfg.Spare {
		s.mu.Unlock()
		w.Kill()
		return
	}
	wr := &warmRunner{key: key, w: w, lastUsed: time.Now()}
	s.idle[key] = append(s.idle[key], wr)
	s.mu.Unlock()
	select {
	case <-w.Ready():
	case <-w.Done():
		return
	}
	rss := residentBytes(w.PID())
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.inPool(wr) {
		return
	}
	if rss == 0 {
		// Its memory cannot be read: it is not kept.
		s.remove(wr)
		w.Kill()
		return
	}
	wr.rss = rss
	s.warmRSS += rss
	s.evict()
}

// inPool says whether wr is still idle in the pool. s.mu is held.
func (s *Server) inPool(wr *warmRunner) bool {
	for _, w := range s.idle[wr.key] {
		if w == wr {
			return true
		}
	}
	return false
}

// remove takes wr out of the pool. s.mu is held.
func (s *Server) remove(wr *warmRunner) {
	ws := s.idle[wr.key]
	for i, w := range ws {
		if w == wr {
			s.idle[wr.key] = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(s.idle[wr.key]) == 0 {
		delete(s.idle, wr.key)
	}
	s.warmRSS -= wr.rss
}

// evict kills the least recently warmed idle runners until those left
// are within the budget. s.mu is held.
func (s *Server) evict() {
	for s.warmRSS > s.cfg.WarmBudget {
		var oldest *warmRunner
		for _, ws := range s.idle {
			for _, w := range ws {
				if w.rss == 0 {
					continue // still compiling: counted once it has
				}
				if oldest == nil || w.lastUsed.Before(oldest.lastUsed) {
					oldest = w
				}
			}
		}
		if oldest == nil {
			return
		}
		s.remove(oldest)
		oldest.w.Kill()
	}
}

// traceMarker keeps a spec's "traces" setting without its writer: a
// runner traces to its own stderr.
func traceMarker(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return &bytes.Buffer{}
}

// residentBytes is pid's resident memory, 0 if it cannot be read.
func residentBytes(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	var size, res int64
	if _, err := fmt.Sscan(string(data), &size, &res); err != nil {
		return 0
	}
	return res * int64(os.Getpagesize())
}

// startRunner starts the run's runner and supervises it: a Server's
// (warm, where one waits), else one started now.
func (r *run) startRunner(ctx context.Context, exe string, spec sandbox.Spec, m *loader.Manifest, measurement func() loader.Measurement, hooks sandbox.Hooks) (sandbox.Result, error) {
	if r.cfg.server == nil {
		return sandbox.Supervise(ctx, exe, spec, hooks)
	}
	return r.cfg.server.runner(ctx, r, exe, spec, m, measurement, hooks)
}

// digestMemo bounds the bytes of the modules a Server keeps to recognise
// a module it has hashed: some twenty Go guests.
const digestMemo = 64 << 20

// moduleDigests remembers modules with their SHA-384, most recent first.
// A module is recognised by its whole bytes, compared with a copy taken
// when it was hashed, never by its path, size or time: the bytes a run
// measures are the bytes it read and runs, whatever changed at its path.
// Comparing is a read at memory speed; hashing SHA-384 is several times
// slower (about 4 ms for a 2.6 MiB Go guest here).
type moduleDigests struct {
	mu      sync.Mutex
	entries []*moduleDigest
	bytes   int
}

type moduleDigest struct {
	module []byte // a copy the memo owns, never changed (bundles read it, see known)
	sum    [48]byte
}

// sum is SHA-384(module).
func (d *moduleDigests) sum(module []byte) [48]byte {
	d.mu.Lock()
	entries := d.entries
	d.mu.Unlock()
	for _, e := range entries {
		if len(e.module) == len(module) && bytes.Equal(e.module, module) {
			d.touch(e)
			return e.sum
		}
	}
	sum := sha512.Sum384(module)
	if len(module) > digestMemo/4 {
		return sum
	}
	e := &moduleDigest{module: bytes.Clone(module), sum: sum}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.entries = append([]*moduleDigest{e}, d.entries...)
	d.bytes += len(module)
	for d.bytes > digestMemo {
		last := d.entries[len(d.entries)-1]
		d.entries = d.entries[:len(d.entries)-1]
		d.bytes -= len(last.module)
	}
	return sum
}

// known is the kept module of size bytes seen last, or nil: what
// loader.OpenKnown compares a request's module with, so that a module the
// server has measured before is read without a copy of its own.
func (d *moduleDigests) known(size int64) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range d.entries {
		if int64(len(e.module)) == size {
			return e.module
		}
	}
	return nil
}

// touch moves e to the front, if it is still kept.
func (d *moduleDigests) touch(e *moduleDigest) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, c := range d.entries {
		if c == e {
			copy(d.entries[1:i+1], d.entries[:i])
			d.entries[0] = e
			return
		}
	}
}

// knownModules is what the run's bundle is read against
// (loader.OpenKnown): its server's kept modules, or nothing.
func (r *run) knownModules() func(size int64) []byte {
	if r.cfg.server == nil {
		return nil
	}
	return r.cfg.server.digests.known
}

// moduleDigest is the SHA-384 of the run's module: remembered by the
// run's server, if it has one.
func (r *run) moduleDigest(b *loader.Bundle) [48]byte {
	if r.cfg.server == nil {
		return b.ModuleSHA384()
	}
	return r.cfg.server.digests.sum(b.Module)
}
