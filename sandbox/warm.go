package sandbox

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
)

// ErrWarmMounts: a warm runner is started before its run, so it takes no
// mounts, whose directories a run opens as it starts.
var ErrWarmMounts = errors.New("a warm runner takes no mounts")

// ErrWarmGone: the warm runner died, or was killed, while idle, before
// anything of the run it was taken for happened.
var ErrWarmGone = errors.New("the warm runner ended while idle")

// Warm is a runner started ahead of its run (Prepare): it has its spec,
// compiles the module and then waits, idle, for the one run it is used
// for (Run). Its standard streams are pipes that Run connects to the
// run's own. A Warm is used once.
type Warm struct {
	p                     *proc
	stdinW, stdoutR, errR *os.File
	idle                  bool // made at idle priority, until Run

	mu       sync.Mutex
	released bool
	used     bool
	dead     bool
	stopI    chan struct{}
	idled    chan struct{} // closed when the idle watch has returned
}

// Prepare starts a runner for spec, which then compiles its module while
// nobody waits for it. spec's standard streams are ignored (Run gives
// them) and it must have no mounts (ErrWarmMounts). While the runner is
// idle, Prepare's watch kills it if it dies, passes its memory bound or
// outlasts its compile bound; Alive says whether it is still usable.
func Prepare(exe string, spec Spec) (*Warm, error) {
	return prepare(exe, spec, false)
}

// PrepareIdle is Prepare with the runner at idle priority (SCHED_IDLE,
// every thread of it) until Run takes it, which first gives it the
// ordinary policy back: while it idles it takes only the CPU that nothing
// else wants. Where this process could not give the policy back (CanIdle
// is false) it is Prepare.
func PrepareIdle(exe string, spec Spec) (*Warm, error) {
	return prepare(exe, spec, CanIdle())
}

func prepare(exe string, spec Spec, idle bool) (*Warm, error) {
	if len(spec.Dirs) > 0 {
		return nil, errcode.Wrap(errcode.Internal, ErrWarmMounts)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "runner pipe: %v", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, errcode.Errorf(errcode.Internal, "runner pipe: %v", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, errcode.Errorf(errcode.Internal, "runner pipe: %v", err)
	}
	spec.Stdin, spec.Stdout, spec.Stderr = nil, nil, nil
	p, err := start(exe, spec, inR, outW, errW, idle)
	// The runner has its own copies now.
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, err
	}
	w := &Warm{p: p, stdinW: inW, stdoutR: outR, errR: errR, idle: idle, stopI: make(chan struct{}), idled: make(chan struct{})}
	go w.watchIdle()
	return w, nil
}

// watchIdle kills the idle runner if it dies, passes its memory bound or
// outlasts its compile bound, until Run takes it.
func (w *Warm) watchIdle() {
	defer close(w.idled)
	var compiling <-chan time.Time
	if d := compileBound(w.p.spec); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		compiling = t.C
	}
	ready := w.p.readyCh
	for {
		select {
		case <-w.stopI:
			return
		case <-ready:
			ready, compiling = nil, nil
			continue
		case <-w.p.exited:
		case <-compiling:
		case <-w.p.over:
		}
		w.mu.Lock()
		w.dead = true
		w.mu.Unlock()
		w.Kill()
		return
	}
}

// PID is the runner's process id.
func (w *Warm) PID() int { return w.p.cmd.Process.Pid }

// Ready is closed once the runner has compiled and waits for its run.
func (w *Warm) Ready() <-chan struct{} { return w.p.readyCh }

// Done is closed once the runner has exited.
func (w *Warm) Done() <-chan struct{} { return w.p.exited }

// Alive reports whether the runner can still be used: not used, not
// killed, not dead.
func (w *Warm) Alive() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.used || w.dead {
		return false
	}
	select {
	case <-w.p.exited:
		return false
	default:
		return true
	}
}

// Kill kills an idle runner (or one running) and releases what it holds.
// It may be called more than once.
func (w *Warm) Kill() {
	w.mu.Lock()
	w.dead = true
	w.mu.Unlock()
	w.p.kill()
	w.release()
}

// release closes the supervisor's ends of the runner's pipes (those
// still its own) and its watch, once.
func (w *Warm) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.released {
		return
	}
	w.released = true
	if w.stdinW != nil {
		w.stdinW.Close()
	}
	w.stdoutR.Close()
	w.errR.Close()
	w.p.stop()
}

// takeStdin hands the supervisor's end of the runner's stdin to the run.
func (w *Warm) takeStdin() *os.File {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := w.stdinW
	w.stdinW = nil
	return in
}

// Run is Supervise's run for the warm runner: the hooks run, the
// runner's streams are connected to stdin (nil: empty), stdout and
// stderr (nil: discarded), it is told to start, and its outcome is
// returned once all its output is copied. A runner that died while idle
// ends the run with E5001, as a runner dying before it compiled does.
func (w *Warm) Run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, hooks Hooks) (Result, error) {
	w.mu.Lock()
	if w.used {
		w.mu.Unlock()
		return Result{}, errcode.Errorf(errcode.Internal, "a warm runner is used once")
	}
	w.used = true
	w.mu.Unlock()
	close(w.stopI)
	<-w.idled
	w.mu.Lock()
	dead := w.dead
	w.mu.Unlock()
	if dead {
		w.Kill()
		return Result{}, errcode.Errorf(errcode.Internal, "%w: %v", ErrWarmGone, w.p.waitErr)
	}
	if w.idle {
		// Before anything of the run: no run goes at idle priority.
		if !raise(w.PID()) {
			w.Kill()
			return Result{}, errcode.Errorf(errcode.Internal, "%w: it could not be given the ordinary priority back", ErrWarmGone)
		}
		// Its compile bound counts from here: the time it waited for an
		// idle CPU was not its own.
		w.p.spawned = time.Now()
	}
	defer w.release()
	var copying sync.WaitGroup
	for _, c := range []struct {
		r *os.File
		w io.Writer
	}{{w.stdoutR, orDiscardW(stdout)}, {w.errR, orDiscardW(stderr)}} {
		copying.Add(1)
		go func() {
			defer copying.Done()
			io.Copy(c.w, c.r)
		}()
	}
	in := w.takeStdin()
	if stdin == nil {
		in.Close()
	} else {
		go func() {
			io.Copy(in, stdin)
			in.Close()
		}()
	}
	res, err := w.p.finish(ctx, hooks, true)
	// The output is all copied once the runner has released its streams
	// (with its result, or by exiting; finish kills a runner whose run it
	// ends): its exit need not delay the run's end.
	copying.Wait()
	return res, err
}

func orDiscardW(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
