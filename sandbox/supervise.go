package sandbox

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/shim"
)

// RunnerArg is the hidden first argument that turns a launch binary into the
// runner child of Supervise. A program that calls Supervise must call
// RunChild from main when it sees this argument.
const RunnerArg = "__ampoule-runner"

// firstMountFD is the runner's descriptor of the first mount's directory;
// the others follow it (after spec, result and module at 3, 4 and 5).
const firstMountFD = 6

// killGrace is how long past its wall-time limit a runner may take to report
// the breach itself before it is killed.
const killGrace = 250 * time.Millisecond

// childSpec is what crosses from the supervisor to the runner (fd 3); the
// module travels separately, in a sealed memory file (fd 5).
type childSpec struct {
	Name        string
	Args        []string
	Env         map[string]string
	Dirs        []childMount
	Secrets     map[string][]byte
	MemoryPages uint32
	WallTime    time.Duration
	OutputBytes int64
	CacheDir    string
	Gate        shim.Table
	OpenFiles   int
	FileOutput  int64
	HostCalls   uint64
	Trace       bool // to the runner's stderr
	Seccomp     shim.SeccompAction
	Entry       string
	// InterpretFirst is Spec.InterpretFirst.
	InterpretFirst bool
	// ModuleSHA384 is the SHA-384 of the module the runner maps from its
	// sealed memory file (Spec.ModuleDigest).
	ModuleSHA384 [48]byte
	// Launcher identifies the launch executable the runner's image was
	// made from (launcherID), which the runner's own /proc/self/exe does
	// not when it runs from a copy (runnerImage).
	Launcher string
}

// childMount is a mount as it crosses to the runner: the directory itself
// travels as a descriptor (fd FD), opened by the supervisor; Host only
// names it in messages.
type childMount struct {
	Host     string
	Guest    string
	Writable bool
	MaxBytes int64
	FD       int
}

// startMessage follows childSpec on fd 3 once the supervisor lets the
// module run; until then the runner only compiles.
type startMessage struct{ Go bool }

// childResult is what the runner reports back (fd 4): first a message with
// Ready set once it has compiled and waits to start, then the result.
type childResult struct {
	Ready    bool
	Cache    string // with Ready: how the compilation cache served the module
	ExitCode uint32
	Code     errcode.Code // 0: no error
	Message  string
	Hint     string
	// Filling, with the result: the runner goes on compiling the module
	// into the cache beside the run it has ended (Spec.InterpretFirst),
	// and exits once the compile has.
	Filling bool
}

// Hooks let a supervisor act at points of a run. Either may be nil.
type Hooks struct {
	// BeforeStart runs in the supervisor while the runner compiles (a
	// launcher measures the module then, and may attach an audit to the
	// runner's pid); the module's first instruction runs only after it
	// returns nil.
	BeforeStart func(runnerPID int) error
	// Ready runs once the runner has compiled and waits to start, just
	// before it is told to: what the runner does from then on is the run.
	Ready func()
	// Compiled runs once the runner has compiled, before Ready, with how
	// the compilation cache served the module (CacheHit, CacheMiss or
	// CacheOff, as the runner reports it: for messages only).
	Compiled func(cache string)
	// WaitExit makes Supervise return only once the runner has exited,
	// for a caller that reads what the runner wrote into its mounts.
	WaitExit bool
}

// Supervise runs spec in a child process (exe RunnerArg) and returns its
// outcome as Run would. The child runs wazero without loop checks, at full
// speed; the supervisor, which no guest can stall, enforces the wall-time
// limit and cancellation by killing it. Go cannot preempt a goroutine inside
// wazero's compiled code, so a guest spinning in pure wasm can freeze the Go
// runtime of its own process (at the next stop-the-world): the supervisor is
// never that process.
//
// The supervisor also bounds what the runner's own limits cannot see: it
// kills a runner whose compilation outlasts its compile bound (E4002; see
// Spec.CompileTime) and one whose resident memory passes twice its memory
// limit plus the runtime's own overhead (E4001), which is how a table grown
// without a maximum, or anything else wazero allocates for a guest, stays
// bounded.
//
// spec.Preempt and spec.BeforeStart are ignored;
// a non-nil spec.Trace means the runner traces to its own stderr, which is
// spec.Stderr. The child dies with the supervisor. All the runner's output
// has been written to spec.Stdout and spec.Stderr when Supervise returns.
func Supervise(ctx context.Context, exe string, spec Spec, hooks Hooks) (Result, error) {
	streams, err := copyStreams(spec.Stdout, spec.Stderr)
	if err != nil {
		return Result{}, err
	}
	p, err := start(exe, spec, spec.Stdin, streams.files[0], streams.files[1], false)
	streams.started()
	if err != nil {
		streams.wait()
		return Result{}, err
	}
	defer p.stop()
	res, err := p.finish(ctx, hooks, false)
	// The runner has released its streams (with its result, or by
	// exiting: finish kills a runner whose run it ends), so the copies
	// end now, not with its exit.
	streams.wait()
	return res, err
}

// PrepareStart does ahead of time what the Go runtime does the first time
// a process starts another: it checks, once, that the kernel's pidfd calls
// work, by cloning a child that exits at once and waiting for it. A
// launcher calls it on a goroutine of its own while it reads its bundle, so
// that the runner's start (Supervise) does not wait for that check.
func PrepareStart() {
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		p.Release()
	}
}

// streams are a supervised runner's stdout and stderr as it gets them:
// a writer that is a file as it is, and any other through a pipe this
// process copies from. exec.Cmd would copy too, but its copies are waited
// for only with the runner's exit, which is the kernel tearing down the
// runner's address space (its compiled code, the guest's memory),
// milliseconds after the runner has closed its streams and sent its
// result.
type streams struct {
	files   [2]*os.File
	ends    []*os.File // the runner's ends of the pipes, closed here once it has them
	copying sync.WaitGroup
}

func copyStreams(stdout, stderr io.Writer) (*streams, error) {
	s := &streams{}
	for i, w := range []io.Writer{stdout, stderr} {
		if f, ok := w.(*os.File); ok {
			s.files[i] = f
			continue
		}
		if w == nil || w == io.Discard {
			continue // the runner's /dev/null
		}
		r, pw, err := os.Pipe()
		if err != nil {
			s.started()
			s.wait()
			return nil, errcode.Errorf(errcode.Internal, "runner pipe: %v", err)
		}
		s.files[i], s.ends = pw, append(s.ends, pw)
		s.copying.Add(1)
		go func() {
			defer s.copying.Done()
			// A writer that fails ends the copy, and the runner's writes
			// then fail too (EPIPE) rather than fill the pipe and block.
			io.Copy(w, r)
			r.Close()
		}()
	}
	return s, nil
}

// started closes this process's copies of the runner's ends, once the
// runner has its own (or was not started): the copies end when it closes
// them or exits.
func (s *streams) started() {
	for _, f := range s.ends {
		f.Close()
	}
	s.ends = nil
}

// wait waits for the copies to end.
func (s *streams) wait() { s.copying.Wait() }

// proc is a started runner: it has its spec and compiles, then waits for
// finish to let it run.
type proc struct {
	cmd       *exec.Cmd
	spec      Spec
	specW     *os.File
	enc       *gob.Encoder
	resCh     chan *childResult
	readyCh   chan struct{}
	startedCh chan struct{} // closed once the runner is told to start
	exited    chan struct{}
	waitErr   error
	over      <-chan uint64
	bound     uint64
	stopWatch chan struct{}
	spawned   time.Time
	cache     string // how the compilation cache served: set before readyCh closes
}

// start starts a runner for spec with the given standard streams (a nil
// stdout or stderr is /dev/null) and sends it its spec: from here on it
// compiles, and then waits for finish. idle has it set itself to idle
// priority as it starts (lowerSelf).
func start(exe string, spec Spec, stdin io.Reader, stdout, stderr *os.File, idle bool) (*proc, error) {
	if err := checkSecrets(spec); err != nil {
		return nil, err
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "runner pipe: %v", err)
	}
	resR, resW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return nil, errcode.Errorf(errcode.Internal, "runner pipe: %v", err)
	}
	// The module's memory file exists before the runner (it is one of the
	// runner's descriptors) and is filled and sealed once the runner has
	// started, while it initialises: it maps the file only after its spec,
	// which is sent after the seals.
	module, err := newModuleFile()
	if err != nil {
		specR.Close()
		specW.Close()
		resR.Close()
		resW.Close()
		return nil, errcode.Errorf(errcode.Internal, "passing the module to the runner: %v", err)
	}
	defer module.Close()
	// The mounts are opened here, before the runner exists, and reach it as
	// descriptors: what the host renames or links at their paths from now
	// on changes nothing the guest reaches.
	var dirs []childMount
	var dirFiles []*os.File
	defer func() {
		for _, f := range dirFiles {
			f.Close()
		}
	}()
	for _, d := range spec.Dirs {
		root := d.Root
		if root == nil {
			r, err := shim.OpenRoot(d.Host)
			if err != nil {
				specR.Close()
				specW.Close()
				resR.Close()
				resW.Close()
				return nil, errcode.Errorf(errcode.DirInvalid, "mount %s::%s: %v", d.Host, d.Guest, err)
			}
			defer r.Close()
			root = r
		}
		fd, err := root.Dup()
		if err != nil {
			specR.Close()
			specW.Close()
			resR.Close()
			resW.Close()
			return nil, errcode.Errorf(errcode.Internal, "passing mount %s to the runner: %v", d.Guest, err)
		}
		dirFiles = append(dirFiles, os.NewFile(uintptr(fd), d.Host))
		dirs = append(dirs, childMount{Host: d.Host, Guest: d.Guest, Writable: d.Writable, MaxBytes: d.MaxBytes, FD: firstMountFD + len(dirs)})
	}
	image, launcher, err := runnerImage(exe, spec.Protect)
	if err != nil {
		specR.Close()
		specW.Close()
		resR.Close()
		resW.Close()
		return nil, errcode.Errorf(errcode.ProtectionUnavailable, "the runner's image: %v", err)
	}
	cmd := exec.Command(image, RunnerArg)
	cmd.Args[0] = exe
	// Nothing of the supervisor's environment reaches the runner: no
	// GODEBUG to print traces, no GOTRACEBACK=crash to dump core.
	cmd.Env = []string{}
	if spec.Protect {
		cmd.Env = []string{"GOTRACEBACK=none"}
	}
	cmd.Stdin = stdin
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.ExtraFiles = append([]*os.File{specR, resW, module}, dirFiles...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A stdin that is not a file is copied by a goroutine that may be blocked
	// reading it when the child ends; do not wait for it.
	cmd.WaitDelay = 100 * time.Millisecond
	if idle {
		cmd.Args = append(cmd.Args, idleArg)
	}
	startErr := cmd.Start()
	specR.Close()
	resW.Close()
	if startErr != nil {
		specW.Close()
		resR.Close()
		return nil, errcode.Errorf(errcode.Internal, "starting the runner: %v", startErr)
	}
	p := &proc{cmd: cmd, spec: spec, specW: specW, enc: gob.NewEncoder(specW),
		resCh: make(chan *childResult, 1), readyCh: make(chan struct{}), startedCh: make(chan struct{}), exited: make(chan struct{}),
		stopWatch: make(chan struct{}), spawned: time.Now()}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := sealModule(module, spec.Module); err != nil {
		specW.Close()
		p.kill()
		resR.Close()
		close(p.stopWatch)
		return nil, errcode.Errorf(errcode.Internal, "passing the module to the runner: %v", err)
	}
	// Found and hashed now, while the runner starts, not before it.
	cacheDir := spec.CacheDir
	if spec.CacheDirFunc != nil {
		cacheDir = spec.CacheDirFunc()
	}
	var digest [48]byte
	if spec.ModuleDigest != nil {
		digest = spec.ModuleDigest()
	} else {
		digest = sha512.Sum384(spec.Module)
	}
	if err := p.enc.Encode(childSpec{
		Name: spec.Name, Args: spec.Args, Env: spec.Env, Dirs: dirs, Secrets: spec.Secrets,
		MemoryPages: spec.MemoryPages, WallTime: spec.WallTime, OutputBytes: spec.OutputBytes,
		CacheDir: cacheDir, Gate: spec.Gate,
		OpenFiles: spec.OpenFiles, FileOutput: spec.FileOutputBytes, HostCalls: spec.HostCalls, Trace: spec.Trace != nil,
		Seccomp: spec.Seccomp, Entry: spec.Entry, ModuleSHA384: digest, InterpretFirst: spec.InterpretFirst,
		Launcher: launcher,
	}); err != nil {
		specW.Close()
		p.kill()
		resR.Close()
		close(p.stopWatch)
		return nil, errcode.Errorf(errcode.Internal, "sending the run spec: %v", err)
	}
	go func() {
		defer resR.Close()
		dec := gob.NewDecoder(io.LimitReader(resR, 1<<20))
		readied := false
		for {
			var r childResult
			if err := dec.Decode(&r); err != nil {
				p.resCh <- nil
				return
			}
			if r.Ready {
				if !readied { // once, whatever the runner sends
					p.cache = r.Cache
					close(p.readyCh)
					readied = true
				}
				continue
			}
			p.resCh <- &r
			return
		}
	}()
	bounded := spec
	bounded.CacheDir = cacheDir // an interpreted run's bound needs a cache
	p.bound = residentBound(bounded)
	if p.over, err = watchResident(cmd.Process.Pid, p.bound, p.stopWatch, p.readyCh, p.startedCh); err != nil {
		// A runner that has already ended (its spec read, a module refused
		// at once) has no statistics left to read and nothing to bound:
		// its result says why it ended. A live runner whose statistics
		// cannot be read is an error: its bound could not be enforced.
		// (Its reaper closes exited just after the reap that removed them.)
		select {
		case <-p.exited:
			p.over = make(chan uint64)
			return p, nil
		case <-time.After(100 * time.Millisecond):
		}
		specW.Close()
		p.kill()
		close(p.stopWatch)
		return nil, errcode.Errorf(errcode.Internal, "%v", err)
	}
	return p, nil
}

// kill kills the runner and waits for it to be reaped.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
}

// stop ends the watch of the runner's memory.
func (p *proc) stop() { close(p.stopWatch) }

// finish runs the hooks and the run: it waits for the runner to have
// compiled, tells it to start and returns its outcome. warm says the
// runner was started ahead of the run, so that its compile bound counts
// from its start rather than from the hooks'.
func (p *proc) finish(ctx context.Context, hooks Hooks, warm bool) (Result, error) {
	spec, cmd := p.spec, p.cmd
	if hooks.BeforeStart != nil {
		if err := hooks.BeforeStart(cmd.Process.Pid); err != nil {
			p.specW.Close()
			p.kill()
			return Result{}, err
		}
	}
	// Compiling has a bound of its own, before the wall-time clock starts.
	var compiling <-chan time.Time
	compiled := false
	if warm {
		select {
		case <-p.readyCh:
			compiled = true // its bound is behind it, however long it idled
		default:
		}
	}
	if d := compileBound(spec); d > 0 && !compiled {
		if warm {
			d -= time.Since(p.spawned)
		}
		t := time.NewTimer(max(d, 0))
		defer t.Stop()
		compiling = t.C
	}
	select {
	case <-p.readyCh:
		if hooks.Compiled != nil {
			hooks.Compiled(p.cache)
		}
		if hooks.Ready != nil {
			hooks.Ready()
		}
	case <-p.exited:
		// The runner died before it was ready; the result says why.
	case <-ctx.Done():
		// Interrupted while the runner compiles.
		p.specW.Close()
		p.kill()
		return Result{}, errcode.Errorf(errcode.Interrupted, "the run was stopped: %v", context.Cause(ctx))
	case <-compiling:
		p.specW.Close()
		p.kill()
		return Result{}, errcode.Errorf(errcode.WallTimeLimit, "compiling the module took longer than %v (its wall-time limit, and at least 5 s and 2 s per MiB of module)", compileBound(spec))
	case rss := <-p.over:
		p.specW.Close()
		p.kill()
		return Result{}, residentError(rss, p.bound, spec)
	}
	// The wall-time limit counts from here, as the runner's own does.
	p.enc.Encode(startMessage{Go: true})
	p.specW.Close()
	close(p.startedCh)

	var deadline <-chan time.Time
	if spec.WallTime > 0 {
		t := time.NewTimer(spec.WallTime + killGrace)
		defer t.Stop()
		deadline = t.C
	}
	select {
	case r := <-p.resCh:
		if r == nil {
			<-p.exited
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGSYS {
				return Result{}, errcode.Errorf(errcode.ConfinementViolated, "the runner was killed by its seccomp filter (%v)", p.waitErr)
			}
			return Result{}, errcode.Errorf(errcode.Internal, "the runner ended without a result: %v", p.waitErr)
		}
		// The runner has written all its output and is exiting. Its
		// streams are files (start's callers copy any other writer
		// themselves), so its exit (the kernel tearing down its address
		// space) need not delay ours, and the waiting goroutine reaps it;
		// but a compile it still fills the cache with, beside a run it
		// interpreted, is given its compile's bound.
		if r.Filling {
			p.awaitFill(ctx)
		}
		if hooks.WaitExit {
			<-p.exited
		}
		if r.Code != 0 {
			e := errcode.Errorf(r.Code, "%s", r.Message)
			if r.Hint != "" && r.Hint != r.Code.Hint() {
				e = e.WithHint(r.Hint)
			}
			return Result{}, e
		}
		return Result{ExitCode: r.ExitCode}, nil
	case <-ctx.Done():
		p.kill()
		return Result{}, errcode.Errorf(errcode.Interrupted, "the run was stopped: %v", context.Cause(ctx))
	case <-deadline:
		p.kill()
		return Result{}, errcode.Errorf(errcode.WallTimeLimit, "%s", limitDetail(errcode.WallTimeLimit, &spec))
	case rss := <-p.over:
		p.kill()
		return Result{}, residentError(rss, p.bound, spec)
	}
}

// awaitFill waits for a runner that has reported its run's outcome and
// goes on compiling the module into the cache: the caller may store what
// it compiles (the authenticated cache commits it), and a runner outliving
// its supervisor dies with it. The compile has the bound a compiling run's
// has; the caller's context and the resident bound end it too, by killing
// the runner. None of them changes the outcome, which is decided.
func (p *proc) awaitFill(ctx context.Context) {
	var bound <-chan time.Time
	if d := compileBound(p.spec); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		bound = t.C
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		p.kill()
	case <-bound:
		p.kill()
	case <-p.over:
		p.kill()
	}
}

// RunChild is the runner's side of Supervise: it reads the spec from fd 3,
// runs it with the process's own stdio, reports to fd 4 and returns the
// process exit status. Signals are the supervisor's business: a runner
// ignores those another process sends it to stop it or make it dump its
// stacks. Before it reads anything it makes itself not dumpable, with no
// core file (Protect), in every profile: it holds the module, the spec and
// the workload's memory.
func RunChild() int {
	// SIGPIPE too: a workload writing to a closed stdout gets EPIPE, as a
	// process would, instead of killing the runner.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	signal.Ignore(DumpSignals...)
	if len(os.Args) > 2 && os.Args[2] == idleArg {
		// A warm runner, made ahead of its run: at idle priority until
		// the run that takes it raises it (Warm.Run).
		lowerSelf()
	}
	specF, resF, modF := os.NewFile(3, "spec"), os.NewFile(4, "result"), os.NewFile(5, "module")
	if specF == nil || resF == nil || modF == nil {
		fmt.Fprintln(os.Stderr, "launch: the runner is started by 'launch run', not by hand")
		return errcode.ClassUsage.ExitStatus()
	}
	resEnc := gob.NewEncoder(resF)
	if err := Protect(); err != nil {
		return report(resF, resEnc, Result{}, errcode.Errorf(errcode.ProtectionUnavailable, "the runner: %v", err), false)
	}
	var cs childSpec
	dec := gob.NewDecoder(specF)
	if err := dec.Decode(&cs); err != nil {
		return report(resF, resEnc, Result{}, errcode.Errorf(errcode.Internal, "reading the run spec: %v", err), false)
	}
	module, err := mapModule(modF)
	if err != nil {
		return report(resF, resEnc, Result{}, errcode.Errorf(errcode.Internal, "reading the module: %v", err), false)
	}
	var mounts []Mount
	for _, d := range cs.Dirs {
		root, err := shim.RootFromFD(d.FD, d.Host)
		if err != nil {
			return report(resF, resEnc, Result{}, errcode.Errorf(errcode.DirInvalid, "mount %s::%s: %v", d.Host, d.Guest, err), false)
		}
		defer root.Close()
		mounts = append(mounts, Mount{Host: d.Host, Guest: d.Guest, Writable: d.Writable, MaxBytes: d.MaxBytes, Root: root})
	}
	var cache string
	reported := false
	var trace io.Writer
	if cs.Trace {
		trace = os.Stderr
	}
	res, err := Run(context.Background(), Spec{
		OpenFiles: cs.OpenFiles, FileOutputBytes: cs.FileOutput, HostCalls: cs.HostCalls, Trace: trace,
		Module: module, Name: cs.Name, Args: cs.Args, Env: cs.Env, Dirs: mounts, Secrets: cs.Secrets,
		MemoryPages: cs.MemoryPages, WallTime: cs.WallTime, OutputBytes: cs.OutputBytes,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, CacheDir: cs.CacheDir, Gate: cs.Gate, Entry: cs.Entry,
		InterpretFirst: cs.InterpretFirst, launcher: cs.Launcher,
		// The supervisor's digest of the bytes it sealed: mapModule has
		// checked that they cannot have changed since.
		ModuleDigest: func() [48]byte { return cs.ModuleSHA384 },
		Compiled:     func(c string) { cache = c },
		// An interpreted run's outcome, reported before the compile
		// beside it has ended: the supervisor waits for that itself, to
		// the runner's exit. Its stdout and stderr stay open until then:
		// the compile opens files, which must not take their numbers.
		Decided: func(res Result, err error) {
			report(resF, resEnc, res, err, true)
			reported = true
		},
		BeforeStart: func() error {
			defer specF.Close()
			if err := resEnc.Encode(childResult{Ready: true, Cache: cache}); err != nil {
				return errcode.Errorf(errcode.Internal, "telling the supervisor the runner is ready: %v", err)
			}
			var start startMessage
			if err := dec.Decode(&start); err != nil || !start.Go {
				return errcode.Errorf(errcode.Internal, "the supervisor did not start the run: %v", err)
			}
			// Compiled, not yet run: from here on the runner makes only the
			// system calls its allowlist names.
			if err := shim.Confine(cs.Seccomp); err != nil {
				return errcode.Errorf(errcode.ConfinementUnavailable, "%v", err)
			}
			return nil
		},
	})
	// The workload has written all it will: its streams go before the
	// result, so that a supervisor copying them sees their end with the
	// result rather than at this process's exit (the kernel tearing down
	// its address space, milliseconds later).
	if reported {
		return 0
	}
	releaseStdio()
	return report(resF, resEnc, res, err, false)
}

// releaseStdio closes the runner's stdout and stderr, releasing the
// supervisor's pipes or files. It is called with only the report left to
// do, which opens nothing that could take their numbers; close is what
// the runner's seccomp filter allows (dup2 it does not).
func releaseStdio() {
	unix.Close(1)
	unix.Close(2)
}

// report sends the run's outcome; filling says the runner goes on
// compiling the module into the cache (childResult.Filling).
func report(w *os.File, enc *gob.Encoder, res Result, err error, filling bool) int {
	r := childResult{ExitCode: res.ExitCode, Filling: filling}
	if err != nil {
		var e *errcode.Error
		if !errors.As(err, &e) {
			e = errcode.Wrap(errcode.Internal, err)
		}
		r.Code, r.Message, r.Hint = e.Code, e.Error(), e.Hint()
	}
	if err := enc.Encode(r); err != nil {
		return errcode.ClassInternal.ExitStatus()
	}
	w.Close()
	return 0
}

// sealedFile returns a memory file holding b, sealed against any change, so
// that the runner gets exactly the bytes that were measured, in one read.
func sealedFile(b []byte) (*os.File, error) {
	f, err := newModuleFile()
	if err != nil {
		return nil, err
	}
	if err := sealModule(f, b); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// newModuleFile is an empty memory file that can be sealed.
func newModuleFile() (*os.File, error) {
	fd, err := unix.MemfdCreate("ampoule-module", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "ampoule-module"), nil
}

// sealModule writes b to the memory file f, seals it against change and
// checks, once sealed, that it holds b and nothing else: until the seals a
// process that may open the runner's descriptors (one of the same user,
// while the fresh runner is still dumpable) could have written to it too.
func sealModule(f *os.File, b []byte) error {
	if _, err := f.Write(b); err != nil {
		return err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, moduleSeals); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() != int64(len(b)) {
		return fmt.Errorf("the module's memory file holds %d bytes, not the %d written", st.Size(), len(b))
	}
	if len(b) > 0 {
		m, err := unix.Mmap(int(f.Fd()), 0, len(b), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		same := bytes.Equal(m, b)
		unix.Munmap(m)
		if !same {
			return errors.New("the module's memory file changed before it was sealed")
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// moduleSeals are the seals a module's memory file must carry for the
// runner to take it as the bytes the supervisor wrote and hashed.
const moduleSeals = unix.F_SEAL_WRITE | unix.F_SEAL_GROW | unix.F_SEAL_SHRINK | unix.F_SEAL_SEAL

// mapModule maps the sealed module file read-only: no copy, and the pages
// are the ones the supervisor wrote. The mapping lives as long as the
// runner. A file without the seals sealedFile adds is refused: the digest
// the supervisor sends would not be bound to what is mapped.
func mapModule(f *os.File) ([]byte, error) {
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil {
		return nil, fmt.Errorf("the module is not a sealed memory file: %v", err)
	}
	if seals&moduleSeals != moduleSeals {
		return nil, fmt.Errorf("the module's memory file is not sealed against change (seals %#x)", seals)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return []byte{}, nil
	}
	return unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
}
