package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/shim"
)

// workResult is what the crash example's "work N" mode prints.
func workResult(rounds int) string {
	x := uint64(88172645463325252)
	for i := 0; i < rounds*1000000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return fmt.Sprintf("worked %x\n", x)
}

// cgroup2Root is where the unified cgroup hierarchy is mounted, or "".
func cgroup2Root() string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(s.Text(), " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		if f := strings.Fields(pre); len(f) >= 5 {
			return f[4]
		}
	}
	return ""
}

// freezer is a cgroup v2 group the test can move a runner into and freeze.
type freezer struct{ dir string }

func newFreezer(t *testing.T) *freezer {
	root := cgroup2Root()
	if root == "" {
		t.Skip("no cgroup v2 hierarchy is mounted here, so there is no cgroup.freeze to test")
	}
	dir := filepath.Join(root, fmt.Sprintf("ampoule-freeze-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup under %s (%v): freezing needs a writable cgroup v2 hierarchy (root)", root, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.freeze")); err != nil {
		os.Remove(dir)
		t.Skipf("the kernel offers no cgroup.freeze: %v", err)
	}
	f := &freezer{dir}
	t.Cleanup(func() {
		// The runner has exited, so the group is empty and can go.
		os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte("0"), 0)
		for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	})
	return f
}

func (f *freezer) add(t *testing.T, pid int) {
	if err := os.WriteFile(filepath.Join(f.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("moving the runner into %s: %v", f.dir, err)
	}
}

// set freezes or thaws the group and waits until the kernel says it is done.
func (f *freezer) set(t *testing.T, frozen bool) {
	want := map[bool]string{true: "1", false: "0"}[frozen]
	if err := os.WriteFile(filepath.Join(f.dir, "cgroup.freeze"), []byte(want), 0); err != nil {
		t.Fatalf("cgroup.freeze = %s: %v", want, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(f.dir, "cgroup.events"))
		if strings.Contains(string(b), "frozen "+want+"\n") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the group did not reach frozen %s", want)
}

// TestRunnerSurvivesJobControl stops and continues a runner confined with
// production's kill action, sends it SIGWINCH and SIGPIPE, and freezes and
// thaws its cgroup, once while its workload sleeps in poll_oneoff and once
// while it computes: every run must end as if nothing had happened, with
// exit 0 and its output. The kernel restarts a sleep a stop interrupted
// through restart_syscall, which the allowlist must hold.
func TestRunnerSurvivesJobControl(t *testing.T) {
	if _, err := shim.Allowlist(); err != nil {
		t.Skipf("no seccomp allowlist here: %v", err)
	}
	const rounds = 1500 // about a second or more of pure computation here
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
		do   func(t *testing.T, pid int, f *freezer)
	}{
		{"stop-continue", func(t *testing.T, pid int, _ *freezer) {
			syscall.Kill(pid, syscall.SIGSTOP)
			time.Sleep(200 * time.Millisecond)
			syscall.Kill(pid, syscall.SIGCONT)
		}},
		{"stop-continue-twice", func(t *testing.T, pid int, _ *freezer) {
			for range 2 {
				syscall.Kill(pid, syscall.SIGTSTP)
				syscall.Kill(pid, syscall.SIGSTOP)
				time.Sleep(50 * time.Millisecond)
				syscall.Kill(pid, syscall.SIGCONT)
				time.Sleep(50 * time.Millisecond)
			}
		}},
		{"sigwinch", func(t *testing.T, pid int, _ *freezer) {
			for range 5 {
				syscall.Kill(pid, syscall.SIGWINCH)
				time.Sleep(20 * time.Millisecond)
			}
		}},
		{"sigpipe", func(t *testing.T, pid int, _ *freezer) {
			syscall.Kill(pid, syscall.SIGPIPE)
		}},
		{"cgroup-freeze", func(t *testing.T, pid int, f *freezer) {
			f.add(t, pid)
			f.set(t, true)
			time.Sleep(200 * time.Millisecond)
			f.set(t, false)
		}},
	}
	for _, w := range workloads {
		for _, ev := range events {
			t.Run(w.name+"/"+ev.name, func(t *testing.T) {
				var f *freezer
				if ev.name == "cgroup-freeze" {
					f = newFreezer(t) // or skip, saying why
				}
				s, stdout, _ := spec(t, "crash", w.args...)
				s.Seccomp = shim.SeccompKill
				var stderr testwasm.SyncBuffer
				s.Stderr = &stderr
				pids := make(chan int, 1)
				type outcome struct {
					res Result
					err error
				}
				done := make(chan outcome, 1)
				go func() {
					res, err := Supervise(context.Background(), testExe(t), s, Hooks{BeforeStart: func(pid int) error { pids <- pid; return nil }})
					done <- outcome{res, err}
				}()
				pid := <-pids
				deadline := time.Now().Add(30 * time.Second)
				for !strings.Contains(stderr.String(), "crash: mode "+w.args[0]) && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(100 * time.Millisecond)
				select {
				case o := <-done:
					t.Fatalf("the workload ended before the event (%+v %v): it must still be running", o.res, o.err)
				default:
				}
				ev.do(t, pid, f)
				select {
				case o := <-done:
					if o.err != nil || o.res.ExitCode != 0 || stdout.String() != w.stdout {
						t.Errorf("%+v %v, stdout %q (want %q), stderr %q", o.res, o.err, stdout, w.stdout, stderr.String())
					}
				case <-time.After(30 * time.Second):
					syscall.Kill(pid, syscall.SIGKILL)
					t.Fatal("the run did not end")
				}
			})
		}
	}
}
