package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/shim"
)

// ownRunners lists this process's runner children that are still there
// (running, or exited and not reaped).
func ownRunners() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil || !strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", os.Getpid())) {
			continue
		}
		if cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); strings.Contains(string(cmdline), RunnerArg) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func openDescriptors(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestInterpretFirstStopContinue: the host stops and continues a runner
// (SIGSTOP and SIGCONT, as a job-control shell or an attacker would) while
// its guest runs in the interpreter and the module compiles into the cache
// beside it. The run ends with its output, the cache then holds a whole
// entry that the next run compiles from (a hit, with the same output),
// nothing hangs, and the supervisor keeps no runner, descriptor or
// goroutine. The runner is confined as staging's and production's are:
// the compile beside the guest runs under the filter, stopped or not.
func TestInterpretFirstStopContinue(t *testing.T) {
	const rounds = 3 // about two seconds in the interpreter here (a tenth of a second compiled)
	workloads := []struct {
		name   string
		args   []string
		stdout string
	}{
		{"mid-sleep", []string{"nap", "1500"}, "napped\n"},
		{"mid-compute", []string{"work", strconv.Itoa(rounds)}, workResult(rounds)},
	}
	events := []struct {
		name string
		do   func(pid int)
	}{
		{"stop-continue", func(pid int) {
			syscall.Kill(pid, syscall.SIGSTOP)
			time.Sleep(300 * time.Millisecond)
			syscall.Kill(pid, syscall.SIGCONT)
		}},
		{"stop-continue-often", func(pid int) {
			for range 5 {
				syscall.Kill(pid, syscall.SIGTSTP)
				syscall.Kill(pid, syscall.SIGSTOP)
				time.Sleep(40 * time.Millisecond)
				syscall.Kill(pid, syscall.SIGCONT)
				time.Sleep(40 * time.Millisecond)
			}
		}},
	}
	seccomp := shim.SeccompKill
	if _, err := shim.Allowlist(); err != nil {
		seccomp = shim.SeccompOff
		t.Logf("no seccomp allowlist here (%v): the runner is not confined", err)
	}
	for i, w := range workloads {
		for j, ev := range events {
			if raceShort() && i != j {
				// Both workloads and both kinds of stop, each once.
				continue
			}
			t.Run(w.name+"/"+ev.name, func(t *testing.T) {
				cache := t.TempDir()
				fds, goroutines := openDescriptors(t), goruntime.NumGoroutine()
				run := func(want string, during func(pid int, stderr *testwasm.SyncBuffer, mark string)) {
					t.Helper()
					s, stdout, _ := spec(t, "crash", w.args...)
					s.CacheDir, s.InterpretFirst, s.Seccomp = cache, true, seccomp
					var stderr testwasm.SyncBuffer
					s.Stderr = &stderr
					mark := filepath.Join(cache, compiledMark(moduleDigest(&s)))
					pids := make(chan int, 1)
					var served string
					type outcome struct {
						res Result
						err error
					}
					done := make(chan outcome, 1)
					go func() {
						res, err := Supervise(context.Background(), testExe(t), s, Hooks{
							BeforeStart: func(pid int) error { pids <- pid; return nil },
							Compiled:    func(c string) { served = c },
						})
						done <- outcome{res, err}
					}()
					pid := <-pids
					if during != nil {
						during(pid, &stderr, mark)
					}
					select {
					case o := <-done:
						if o.err != nil || o.res.ExitCode != 0 || stdout.String() != w.stdout {
							t.Fatalf("%+v %v, stdout %q (want %q), stderr %q", o.res, o.err, stdout, w.stdout, stderr.String())
						}
					case <-time.After(time.Minute):
						syscall.Kill(pid, syscall.SIGKILL)
						t.Fatal("the run did not end")
					}
					if served != want {
						t.Errorf("the cache served %q, want %q", served, want)
					}
				}
				run(CacheInterpreted, func(pid int, stderr *testwasm.SyncBuffer, mark string) {
					deadline := time.Now().Add(30 * time.Second)
					for !strings.Contains(stderr.String(), "crash: mode "+w.args[0]) && time.Now().Before(deadline) {
						time.Sleep(5 * time.Millisecond)
					}
					// The guest runs interpreted; the compile must still be
					// going, or this tests only a stopped interpreter.
					if _, err := os.Lstat(mark); err == nil {
						t.Fatal("the compile had ended before the runner was stopped")
					}
					ev.do(pid)
				})
				// The interpreted run returned once the compile had filled
				// the cache: one whole entry, which the next run uses.
				if code := cacheEntries(t, cache); len(code) != 1 {
					t.Fatalf("the cache holds %q after the stopped run, want one entry", code)
				}
				run(CacheHit, nil)

				deadline := time.Now().Add(5 * time.Second)
				for (len(ownRunners()) > 0 || openDescriptors(t) > fds || goruntime.NumGoroutine() > goroutines) && time.Now().Before(deadline) {
					time.Sleep(20 * time.Millisecond)
				}
				if left := ownRunners(); len(left) > 0 {
					t.Errorf("runners left: %v", left)
				}
				if n := openDescriptors(t); n > fds {
					t.Errorf("%d descriptors open after the runs, %d before", n, fds)
				}
				if n := goruntime.NumGoroutine(); n > goroutines {
					t.Errorf("%d goroutines after the runs, %d before", n, goroutines)
				}
			})
		}
	}
}

// TestInterpretFirstCompileOutlastsWallTime: a module whose compile takes
// longer than its wall time (crash, about a second to compile, with a
// 400 ms wall time) is still compiled into the cache by its interpreted
// first run, within the compile's own bound, as a compiling run would
// compile it: the guest's outcome is reported at once, the runner goes on
// compiling, and the next run starts from the compiled code. Bounded by
// the wall time instead, the compile never ended, and every run of the
// module was interpreted and lasted its whole wall time.
func TestInterpretFirstCompileOutlastsWallTime(t *testing.T) {
	cache := t.TempDir()
	for _, want := range []string{CacheInterpreted, CacheHit} {
		s, stdout, stderr := spec(t, "crash", "nap", "1")
		s.CacheDir, s.InterpretFirst, s.WallTime = cache, true, 400*time.Millisecond
		var served string
		res, err := Supervise(context.Background(), testExe(t), s, Hooks{Compiled: func(c string) { served = c }})
		if err != nil || res.ExitCode != 0 || stdout.String() != "napped\n" {
			t.Fatalf("%+v %v, stdout %q, stderr %q", res, err, stdout, stderr)
		}
		if served != want {
			t.Fatalf("the cache served %q, want %q", served, want)
		}
	}
}
