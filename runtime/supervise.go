package runtime

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
)

// RunnerArg is the hidden first argument that turns a launch binary into the
// runner child of Supervise. A program that calls Supervise must call
// RunChild from main when it sees this argument.
const RunnerArg = "__ampoule-runner"

// killGrace is how long past its wall-time limit a runner may take to report
// the breach itself before it is killed.
const killGrace = 250 * time.Millisecond

// childSpec is what crosses from the supervisor to the runner (fd 3).
type childSpec struct {
	Module      []byte
	Name        string
	Args        []string
	Env         map[string]string
	Dirs        []Mount
	MemoryPages uint32
	WallTime    time.Duration
	OutputBytes int64
	CacheDir    string
}

// childResult is what the runner reports back (fd 4).
type childResult struct {
	ExitCode uint32
	Code     errcode.Code // 0: no error
	Message  string
	Hint     string
}

// Supervise runs spec in a child process (exe RunnerArg) and returns its
// outcome as Run would. The child runs wazero without loop checks, at full
// speed; the supervisor, which no guest can stall, enforces the wall-time
// limit and cancellation by killing it. Go cannot preempt a goroutine inside
// wazero's compiled code, so a guest spinning in pure wasm can freeze the Go
// runtime of its own process (at the next stop-the-world): the supervisor is
// never that process.
//
// spec.Preempt is ignored. The child dies with the supervisor.
func Supervise(ctx context.Context, exe string, spec Spec) (Result, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return Result{}, errcode.Errorf(errcode.Internal, "runner pipe: %v", err)
	}
	resR, resW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return Result{}, errcode.Errorf(errcode.Internal, "runner pipe: %v", err)
	}
	cmd := exec.Command(exe, RunnerArg)
	cmd.Env = []string{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = spec.Stdin, spec.Stdout, spec.Stderr
	cmd.ExtraFiles = []*os.File{specR, resW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A stdin that is not a file is copied by a goroutine that may be blocked
	// reading it when the child ends; do not wait for it.
	cmd.WaitDelay = 100 * time.Millisecond
	startErr := cmd.Start()
	specR.Close()
	resW.Close()
	if startErr != nil {
		specW.Close()
		resR.Close()
		return Result{}, errcode.Errorf(errcode.Internal, "starting the runner: %v", startErr)
	}

	go func() {
		gob.NewEncoder(specW).Encode(childSpec{
			Module: spec.Module, Name: spec.Name, Args: spec.Args, Env: spec.Env, Dirs: spec.Dirs,
			MemoryPages: spec.MemoryPages, WallTime: spec.WallTime, OutputBytes: spec.OutputBytes,
			CacheDir: spec.CacheDir,
		})
		specW.Close()
	}()
	resCh := make(chan *childResult, 1)
	go func() {
		defer resR.Close()
		var r childResult
		if err := gob.NewDecoder(io.LimitReader(resR, 1<<20)).Decode(&r); err != nil {
			resCh <- nil
			return
		}
		resCh <- &r
	}()
	waitCh := make(chan error, 1)
	go func() { waitCh <- cmd.Wait() }()

	var deadline <-chan time.Time
	if spec.WallTime > 0 {
		t := time.NewTimer(spec.WallTime + killGrace)
		defer t.Stop()
		deadline = t.C
	}
	kill := func() {
		cmd.Process.Kill()
		<-waitCh
	}
	select {
	case waitErr := <-waitCh:
		r := <-resCh
		if r == nil {
			return Result{}, errcode.Errorf(errcode.Internal, "the runner ended without a result: %v", waitErr)
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
		kill()
		return Result{}, errcode.Errorf(errcode.Interrupted, "the run was stopped: %v", context.Cause(ctx))
	case <-deadline:
		kill()
		return Result{}, errcode.Errorf(errcode.WallTimeLimit, "%s", errcode.WallTimeLimit.Text())
	}
}

// RunChild is the runner's side of Supervise: it reads the spec from fd 3,
// runs it with the process's own stdio, reports to fd 4 and returns the
// process exit status. Signals are the supervisor's business.
func RunChild() int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	specF, resF := os.NewFile(3, "spec"), os.NewFile(4, "result")
	if specF == nil || resF == nil {
		fmt.Fprintln(os.Stderr, "launch: the runner is started by 'launch run', not by hand")
		return errcode.ClassUsage.ExitStatus()
	}
	var cs childSpec
	if err := gob.NewDecoder(specF).Decode(&cs); err != nil {
		return report(resF, Result{}, errcode.Errorf(errcode.Internal, "reading the run spec: %v", err))
	}
	specF.Close()
	res, err := Run(context.Background(), Spec{
		Module: cs.Module, Name: cs.Name, Args: cs.Args, Env: cs.Env, Dirs: cs.Dirs,
		MemoryPages: cs.MemoryPages, WallTime: cs.WallTime, OutputBytes: cs.OutputBytes,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, CacheDir: cs.CacheDir,
	})
	return report(resF, res, err)
}

func report(w *os.File, res Result, err error) int {
	r := childResult{ExitCode: res.ExitCode}
	if err != nil {
		var e *errcode.Error
		if !errors.As(err, &e) {
			e = errcode.Wrap(errcode.Internal, err)
		}
		r.Code, r.Message, r.Hint = e.Code, e.Error(), e.Hint()
	}
	if err := gob.NewEncoder(w).Encode(r); err != nil {
		return errcode.ClassInternal.ExitStatus()
	}
	w.Close()
	return 0
}
