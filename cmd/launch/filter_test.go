package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/tee"
)

// filterProbeEnv makes the test binary a probe that prints, as JSON, the
// seccomp filter installed in the process it names.
const filterProbeEnv = "AMPOULE_TEST_FILTER_OF"

// filterProbe reads process pid's seccomp filter with ptrace (seize,
// interrupt, PTRACE_SECCOMP_GET_FILTER, detach: it needs CAP_SYS_ADMIN)
// from a process of its own, so that no ptrace stop reaches the runner's
// real parent, and prints it.
func filterProbe(pidText string) int {
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	goruntime.LockOSThread()
	if err := unix.PtraceSeize(pid); err != nil {
		fmt.Fprintln(os.Stderr, "seize:", err)
		return 1
	}
	defer unix.PtraceDetach(pid)
	if err := unix.PtraceInterrupt(pid); err != nil {
		fmt.Fprintln(os.Stderr, "interrupt:", err)
		return 1
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		fmt.Fprintln(os.Stderr, "wait:", err)
		return 1
	}
	n, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), 0, 0, 0, 0)
	if e != 0 || n == 0 {
		fmt.Fprintln(os.Stderr, "filter size:", e)
		return 1
	}
	prog := make([]unix.SockFilter, n)
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_SECCOMP_GET_FILTER, uintptr(pid), 0, uintptr(unsafe.Pointer(&prog[0])), 0, 0); e != 0 {
		fmt.Fprintln(os.Stderr, "filter:", e)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(prog)
	return 0
}

// installedFilter is the seccomp filter of process pid, read by a probe.
func installedFilter(t *testing.T, pid int) []unix.SockFilter {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), filterProbeEnv+"="+strconv.Itoa(pid))
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("reading the filter of %d: %v %s", pid, err, stderr)
	}
	var prog []unix.SockFilter
	if err := json.Unmarshal(out, &prog); err != nil {
		t.Fatal(err)
	}
	return prog
}

// confinedRunner waits for a runner child of parent whose seccomp filter
// is installed, and returns its pid and its /proc status. A run that ends
// first (its error on ended) fails the test at once, with its error.
func confinedRunner(t *testing.T, parent int, ended chan error) (int, string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-ended:
			ended <- err // for the caller's deferred wait
			t.Fatalf("the run ended before its runner was seen: %v", err)
		default:
		}
		if pid := childRunner(parent); pid != 0 {
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if strings.Contains(string(status), "\nSeccomp:\t2\n") {
				return pid, string(status)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no confined runner under %d", parent)
	return 0, ""
}

// checkFilter: the runner is in seccomp filter mode with one filter, and
// that filter is exactly the profile's program, action included.
func checkFilter(t *testing.T, pid int, status string, action shim.SeccompAction) {
	t.Helper()
	if !strings.Contains(status, "\nSeccomp_filters:\t1\n") || !strings.Contains(status, "\nNoNewPrivs:\t1\n") {
		t.Errorf("runner status: want one filter and no_new_privs:\n%s", status)
	}
	want, err := shim.Program(action)
	if err != nil {
		t.Fatal(err)
	}
	if got := installedFilter(t, pid); !slices.Equal(got, want) {
		t.Errorf("the runner's filter is not %v's program (%d instructions, want %d)", action, len(got), len(want))
	}
}

// TestStaticRunnersAreFiltered looks into the runner of a real launch run
// under staging, and of a production run on a fake SEV-SNP machine (this
// machine has no TEE, and production refuses the simulator), from outside:
// each must run under the seccomp filter with its profile's action, EPERM
// for staging, kill for production.
func TestStaticRunnersAreFiltered(t *testing.T) {
	if _, err := shim.Allowlist(); err != nil {
		t.Skipf("no seccomp allowlist here: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("reading a process's seccomp filter (PTRACE_SECCOMP_GET_FILTER) needs CAP_SYS_ADMIN; CI runs as root")
	}
	crash := testwasm.Example(t, "crash")
	bundle := copyBundle(t, crash, "name = \"crash\"\nprofiles = [\"staging\", \"production\"]\nargs = [\"nap\", \"60000\"]\n")
	t.Run("staging", func(t *testing.T) {
		cmd := exec.Command(testwasm.Launch(t), "run", "--profile", "staging", "--sim-key", t.TempDir()+"/sim.key", bundle)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
		pid, status := confinedRunner(t, cmd.Process.Pid, nil)
		checkFilter(t, pid, status, shim.SeccompErrno)
	})
	t.Run("production", func(t *testing.T) {
		// Debugging off: production refuses a TEE its host may debug.
		be, _, _ := snpfake.AnyBackend(t, snpfake.Options{Debug: false})
		var stderr testwasm.SyncBuffer
		env := &cliEnv{stdin: strings.NewReader(""), stdout: &stderr, stderr: &stderr, runner: runnerExe(t),
			tee: be, platform: &tee.Platform{SEVGuest: tee.SEVGuestDevice}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			code := env.run(ctx, []string{"run", "--profile", "production", "--backend", "snp", "--log-out", "-", bundle})
			done <- fmt.Errorf("exit status %d", code)
		}()
		defer func() { cancel(); <-done }()
		pid, status := confinedRunner(t, os.Getpid(), done)
		checkFilter(t, pid, status, shim.SeccompKill)
	})
}
