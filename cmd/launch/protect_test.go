package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/sandbox"
)

// nobody is the unprivileged user the protection tests run launch as: a
// process's dumpability shows only to processes of its own user without
// CAP_SYS_PTRACE, which a root launcher would not have.
const nobody = 65534

// hostileHost is a launch run set up the way a hostile host would: the Go
// runtime's traces on, core files unlimited and written to the working
// directory, launch running as an ordinary user.
type hostileHost struct {
	bin, dir, bundle, shm string
}

func newHostileHost(t *testing.T) *hostileHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("observing dumpability runs launch as another user, which needs root; CI runs as root")
	}
	crash := testwasm.Example(t, "crash")
	bin := testwasm.Launch(t)
	dir, err := os.MkdirTemp("", "ampoule-protect-")
	if err != nil {
		t.Fatal(err)
	}
	shm, err := os.MkdirTemp("/dev/shm", "ampoule-protect-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir); os.RemoveAll(shm) })
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o755)
	module, err := os.ReadFile(filepath.Join(crash, "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bundle, "module.wasm"), module, 0o644)
	writeManifest(t, bundle, "name = \"crash\"\nprofiles = [\"debug\", \"staging\"]\nargs = [\"nap\", \"60000\"]\n[sealed]\nmount = \"/sealed\"\n")
	for _, d := range []string{dir, shm} {
		if err := os.Chown(d, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	return &hostileHost{bin: bin, dir: dir, bundle: bundle, shm: shm}
}

// start runs launch run under profile as the host set it up, once its
// runner has compiled the module and runs it under its seccomp filter
// (staging) or has started (debug). It returns the process, its stderr
// and the runner's pid.
func (h *hostileHost) start(t *testing.T, profile string) (*exec.Cmd, *testwasm.SyncBuffer, int) {
	t.Helper()
	return h.startWith(t, profile, "GOTRACEBACK=crash", "GODEBUG=gctrace=1,inittrace=1")
}

// startWith is start with env beside the host's home, runtime directory
// and PATH.
func (h *hostileHost) startWith(t *testing.T, profile string, env ...string) (*exec.Cmd, *testwasm.SyncBuffer, int) {
	t.Helper()
	cmd := exec.Command(h.bin, "run", "--profile", profile, "--sim-key", filepath.Join(h.dir, "sim.key"), "--sealed", filepath.Join(h.dir, profile+".sealed"), h.bundle)
	cmd.Dir = h.dir
	cmd.Env = append([]string{"HOME=" + h.dir, "XDG_RUNTIME_DIR=" + h.shm, "PATH=/usr/bin:/bin"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stderr := &testwasm.SyncBuffer{}
	cmd.Stderr = stderr
	startAsHost(t, cmd)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if pid := childRunner(cmd.Process.Pid); pid != 0 {
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if profile == "debug" || strings.Contains(string(status), "\nSeccomp:\t2\n") {
				time.Sleep(100 * time.Millisecond)
				return cmd, stderr, pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no running runner under %d; stderr:\n%s", cmd.Process.Pid, stderr.String())
	return nil, nil, 0
}

// startAsHost starts cmd as a hostile host would, with core files
// unlimited (ulimit -c unlimited, for the child only: it inherits the
// limits at fork), and kills it when the test ends.
func startAsHost(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	var old unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_CORE, &old)
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}); err != nil {
		t.Fatal(err)
	}
	err := cmd.Start()
	unix.Setrlimit(unix.RLIMIT_CORE, &old)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// childRunner is the pid of parent's runner child, or 0.
func childRunner(parent int) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		status, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if bytes.Contains(cmdline, []byte(sandbox.RunnerArg)) && strings.Contains(string(status), fmt.Sprintf("\nPPid:\t%d\n", parent)) {
			return pid
		}
	}
	return 0
}

// openMemAs opens /proc/PID/mem with the credentials of uid and gid and no
// capabilities, as another process of that user would, from a thread of
// its own; the thread is thrown away if root's credentials cannot be put
// back.
func openMemAs(pid, id int) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		const keep = ^uintptr(0)
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, keep, uintptr(id), keep); e != 0 {
			errc <- fmt.Errorf("setresgid: %w", e)
			return
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, keep, uintptr(id), keep); e != 0 {
			errc <- fmt.Errorf("setresuid: %w", e)
			return
		}
		f, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
		if err == nil {
			f.Close()
		}
		_, _, e1 := unix.RawSyscall(unix.SYS_SETRESUID, keep, 0, keep)
		_, _, e2 := unix.RawSyscall(unix.SYS_SETRESGID, keep, 0, keep)
		if e1 == 0 && e2 == 0 {
			goruntime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// coreLimit is the "Max core file size" line of /proc/PID/limits.
func coreLimit(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max core file size") {
			return strings.Join(strings.Fields(l)[4:6], " ")
		}
	}
	t.Fatalf("no core limit in /proc/%d/limits", pid)
	return ""
}

// withoutInitTrace drops the lines GODEBUG=inittrace prints while the Go
// runtime initialises launch's packages, before any of launch's code runs
// (see TestStaticRunsAreProtected), and the fixed warnings.
func withoutInitTrace(stderr string) []string {
	var lines []string
	for _, l := range hostVisible(stderr) {
		if !strings.HasPrefix(l, "init ") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestStaticRunsAreProtected runs launch run --profile staging as an
// ordinary user, with GOTRACEBACK=crash, GODEBUG=gctrace=1,inittrace=1 and
// core files unlimited: neither the supervisor nor its runner may be
// dumpable (their /proc/PID/mem refuses a process of their own user) or
// have a core limit above zero, and SIGQUIT, SIGTERM, SIGINT and SIGHUP,
// and a second signal hard on the first, must each end the run with the
// static line alone and exit 130, leaving no core file, no goroutine dump,
// no GC trace and no plaintext workspace.
// Under debug the supervisor stays dumpable, which shows the probe works;
// the runner is protected in every profile.
func TestStaticRunsAreProtected(t *testing.T) {
	// Started under nohup, this test and every launch it starts would
	// ignore SIGHUP, and launch keeps a hangup ignored, as nohup asks. A
	// handler here makes the launches start with SIGHUP's default
	// disposition, which the hangup case is about.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	h := newHostileHost(t)
	initLines := func() int {
		// The runtime's own trace of its package initialisation, which
		// happens before launch's code can scrub anything.
		cmd := exec.Command(h.bin, "version")
		cmd.Env = []string{"GODEBUG=inittrace=1"}
		out, _ := cmd.CombinedOutput()
		return strings.Count(string(out), "\ninit ") + map[bool]int{true: 1}[strings.HasPrefix(string(out), "init ")]
	}()
	for _, sigs := range [][]syscall.Signal{{syscall.SIGQUIT}, {syscall.SIGTERM}, {syscall.SIGINT}, {syscall.SIGHUP}, {syscall.SIGTERM, syscall.SIGQUIT}} {
		name := sigs[0].String()
		if len(sigs) > 1 {
			// A second signal ends launch at once, without unwinding.
			name += " then " + sigs[1].String()
		}
		t.Run(name, func(t *testing.T) {
			cmd, stderr, runner := h.start(t, "staging")
			sup := cmd.Process.Pid
			for _, p := range []struct {
				name string
				pid  int
			}{{"supervisor", sup}, {"runner", runner}} {
				if err := openMemAs(p.pid, nobody); err == nil {
					t.Errorf("the %s's /proc/%d/mem opens for another process of its user: it is dumpable", p.name, p.pid)
				}
				if l := coreLimit(t, p.pid); l != "0 0" {
					t.Errorf("the %s's core limit is %s, want 0 0", p.name, l)
				}
			}
			if fd2, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", sup)); fd2 != "/dev/null" {
				t.Errorf("the supervisor's descriptor 2, where the Go runtime prints, is %s, not /dev/null", fd2)
			}
			// The supervisor runs on without the host's GODEBUG and with
			// GOTRACEBACK=none; the runner has that variable alone.
			supEnv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", sup))
			if bytes.Contains(supEnv, []byte("GODEBUG")) || bytes.Contains(supEnv, []byte("GOTRACEBACK=crash")) || !bytes.Contains(supEnv, []byte("\x00GOTRACEBACK=none\x00")) {
				t.Errorf("the supervisor's environment: %q", supEnv)
			}
			if runEnv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", runner)); string(runEnv) != "GOTRACEBACK=none\x00" {
				t.Errorf("the runner's environment: %q", runEnv)
			}
			ws, _ := filepath.Glob(filepath.Join(h.shm, "ampoule-sealed-*"))
			if len(ws) == 0 {
				t.Fatal("the run has no sealed workspace to remove")
			}
			for _, sig := range sigs {
				cmd.Process.Signal(sig)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("launch did not exit after %v; stderr:\n%s", sigs, stderr.String())
			}
			if got := cmd.ProcessState.ExitCode(); got != errcode.ClassInterrupted.ExitStatus() {
				t.Errorf("exit = %d (%v), want 130", got, cmd.ProcessState)
			}
			out := stderr.String()
			lines := withoutInitTrace(out)
			if len(lines) != 1 || !staticLine.MatchString(lines[0]) || !strings.HasPrefix(lines[0], "launch: E2003 interrupted ") {
				t.Errorf("the host saw more than the static line:\n%s", strings.Join(lines, "\n"))
			}
			if n := strings.Count(out, "init "); n != initLines {
				t.Errorf("%d init trace lines, want the %d of one process start: a second start took the host's GODEBUG", n, initLines)
			}
			for _, leak := range []string{"goroutine", "SIGQUIT", "gc 1 @", "panic"} {
				if strings.Contains(out, leak) {
					t.Errorf("stderr holds %q:\n%s", leak, out)
				}
			}
			files, _ := os.ReadDir(h.dir)
			for _, f := range files {
				if strings.HasPrefix(f.Name(), "core") {
					t.Errorf("a core file was written: %s", f.Name())
				}
			}
			if ws, _ := filepath.Glob(filepath.Join(h.shm, "ampoule-sealed-*")); len(ws) != 0 {
				t.Errorf("the sealed workspace outlived the run: %v", ws)
			}
			if childRunner(sup) != 0 {
				t.Error("the runner outlived its supervisor")
			}
		})
	}
	// A host that sets neither variable: the supervisor does not start
	// again (its environment is the host's, without GOTRACEBACK=none), and
	// is as protected: what the Go runtime prints at its default level goes
	// to a descriptor 2 that is /dev/null, while launch's lines reach the
	// host's stderr.
	t.Run("clean environment", func(t *testing.T) {
		cmd, stderr, runner := h.startWith(t, "staging")
		sup := cmd.Process.Pid
		if supEnv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", sup)); bytes.Contains(supEnv, []byte("GOTRACEBACK")) {
			t.Errorf("the supervisor started again: its environment is %q", supEnv)
		}
		if err := openMemAs(sup, nobody); err == nil {
			t.Errorf("the supervisor's /proc/%d/mem opens for another process of its user: it is dumpable", sup)
		}
		if l := coreLimit(t, sup); l != "0 0" {
			t.Errorf("the supervisor's core limit is %s, want 0 0", l)
		}
		if fd2, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", sup)); fd2 != "/dev/null" {
			t.Errorf("the supervisor's descriptor 2, where the Go runtime prints, is %s, not /dev/null", fd2)
		}
		if runEnv, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", runner)); string(runEnv) != "GOTRACEBACK=none\x00" {
			t.Errorf("the runner's environment: %q", runEnv)
		}
		cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("launch did not exit after SIGQUIT; stderr:\n%s", stderr.String())
		}
		if got := cmd.ProcessState.ExitCode(); got != errcode.ClassInterrupted.ExitStatus() {
			t.Errorf("exit = %d (%v), want 130", got, cmd.ProcessState)
		}
		if lines := hostVisible(stderr.String()); len(lines) != 1 || !strings.HasPrefix(lines[0], "launch: E2003 interrupted ") {
			t.Errorf("the host saw other than the static line:\n%s", stderr.String())
		}
		if !strings.Contains(stderr.String(), simWarning) {
			t.Errorf("the host's stderr lacks launch's warning:\n%s", stderr.String())
		}
	})
	t.Run("debug", func(t *testing.T) {
		cmd, _, runner := h.start(t, "debug")
		if err := openMemAs(cmd.Process.Pid, nobody); err != nil {
			t.Errorf("under debug the supervisor is dumpable, yet its mem did not open: %v (the probe is broken)", err)
		}
		if err := openMemAs(runner, nobody); err == nil {
			t.Error("the runner is dumpable under debug")
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
}

// TestBrokerIsProtected: the broker's process holds the master key every
// released sealing key derives from, so 'launch broker serve', started as
// an ordinary user with GOTRACEBACK=crash, GODEBUG=gctrace=1 and core
// files unlimited, is not dumpable, has no core limit, and on SIGQUIT
// stops without a goroutine dump, a GC trace or a core file.
func TestBrokerIsProtected(t *testing.T) {
	h := newHostileHost(t)
	policy := filepath.Join(h.dir, "policy.toml")
	p := launch(t, "policy", "new", "--from", h.bundle, "--profile", "debug", "--backend", "sim", "--allow-insecure", "--sim-key", filepath.Join(h.dir, "sim.key"))
	if p.code != 0 {
		t.Fatalf("policy new: %+v", p)
	}
	os.WriteFile(policy, []byte(p.stdout), 0o644)
	cmd := exec.Command(h.bin, "broker", "serve", "--policy", policy, "--db", filepath.Join(h.dir, "broker.db"), "--listen", "127.0.0.1:0")
	cmd.Dir = h.dir
	cmd.Env = []string{"HOME=" + h.dir, "GOTRACEBACK=crash", "GODEBUG=gctrace=1", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	var stdout, stderr testwasm.SyncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	startAsHost(t, cmd)
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stdout.String(), "listening on"); {
		if time.Now().After(deadline) {
			t.Fatalf("the broker did not start: %q %q", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	pid := cmd.Process.Pid
	if err := openMemAs(pid, nobody); err == nil {
		t.Errorf("the broker's /proc/%d/mem opens for another process of its user: it is dumpable", pid)
	}
	if l := coreLimit(t, pid); l != "0 0" {
		t.Errorf("the broker's core limit is %s, want 0 0", l)
	}
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if bytes.Contains(env, []byte("GODEBUG")) || !bytes.Contains(env, []byte("GOTRACEBACK=none")) {
		t.Errorf("the broker's environment: %q", env)
	}
	cmd.Process.Signal(syscall.SIGQUIT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the broker did not stop on SIGQUIT; stderr:\n%s", stderr.String())
	}
	for _, leak := range []string{"goroutine", "SIGQUIT", "gc 1 @"} {
		if strings.Contains(stderr.String(), leak) {
			t.Errorf("stderr holds %q:\n%s", leak, stderr.String())
		}
	}
	files, _ := os.ReadDir(h.dir)
	for _, f := range files {
		if strings.HasPrefix(f.Name(), "core") {
			t.Errorf("a core file was written: %s", f.Name())
		}
	}
}
