package shim

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/shim/audit"
)

const childEnv = "AMPOULE_SECCOMP_CHILD"

// TestMain re-executes this test binary as a confined child when asked: a
// filter cannot be removed, so it must never be installed in the test
// process itself.
func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "errno":
		os.Exit(confinedChild(SeccompErrno))
	case "kill":
		os.Exit(confinedChild(SeccompKill))
	}
}

// confinedChild installs the filter, then shows what still works and what
// does not, one line each, and exits 0 only if every line is as expected.
func confinedChild(action SeccompAction) int {
	if err := Confine(action); err != nil {
		fmt.Println("install:", err)
		return 3
	}
	ok := true
	check := func(what string, err error, wantDenied bool) {
		denied := errors.Is(err, unix.EPERM)
		fmt.Printf("%s: %v\n", what, err)
		if denied != wantDenied || (!wantDenied && err != nil) {
			ok = false
			fmt.Printf("  UNEXPECTED (want denied=%v)\n", wantDenied)
		}
	}
	if action == SeccompKill {
		// The first refused call ends the process.
		unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		fmt.Println("still alive after socket()")
		return 4
	}
	_, err := os.ReadFile("/proc/self/status")
	check("read a file", err, false)
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // forces a new OS thread: clone(CLONE_THREAD)
		done <- nil
	}()
	check("new thread", <-done, false)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.Close(fd)
	}
	check("socket", err, true)
	_, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	check("unix socket", err, true)
	err = unix.Exec("/bin/true", []string{"true"}, nil)
	check("execve", err, true)
	_, err = syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	check("fork", err, true)
	_, _, errno := unix.RawSyscall(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0)
	check("clone a process", errnoErr(errno), true)
	_, _, errno = unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0)
	check("ptrace", errnoErr(errno), true)
	if !ok {
		return 1
	}
	return 0
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func runChild(t *testing.T, mode string) (string, *os.ProcessState) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState
}

// TestSeccompErrno proves, in a re-executed child, that after Confine the
// process still reads files and starts threads, while sockets, exec, fork
// and ptrace fail with EPERM.
func TestSeccompErrno(t *testing.T) {
	if _, err := Allowlist(); err != nil {
		t.Skipf("no seccomp allowlist on this architecture: %v", err)
	}
	out, st := runChild(t, "errno")
	if st.ExitCode() != 0 {
		t.Fatalf("confined child exited %d:\n%s", st.ExitCode(), out)
	}
	for _, want := range []string{"socket: operation not permitted", "execve: operation not permitted", "new thread: <nil>"} {
		if !strings.Contains(out, want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}

// TestSeccompKill proves the kill action ends the process on the first
// refused call.
func TestSeccompKill(t *testing.T) {
	if _, err := Allowlist(); err != nil {
		t.Skipf("no seccomp allowlist on this architecture: %v", err)
	}
	out, st := runChild(t, "kill")
	ws, ok := st.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Fatalf("child was not killed by SIGSYS: %v\n%s", st, out)
	}
	if strings.Contains(out, "still alive") {
		t.Error("the process ran on after a refused call")
	}
}

// TestProgramShape checks the allowlist's rows (each named as the kernel
// names its number, with a reason, none of the calls that must never be
// allowed) and the program's size for them.
func TestProgramShape(t *testing.T) {
	list, err := Allowlist()
	if err != nil {
		t.Skip(err)
	}
	seen := map[string]uintptr{}
	for _, nr := range list.Numbers() {
		s := list[nr]
		if prev, dup := seen[s.Name]; dup {
			t.Errorf("%s is listed as %d and %d", s.Name, prev, nr)
		}
		seen[s.Name] = nr
		if kernel := audit.Name(uint32(nr)); kernel != s.Name {
			t.Errorf("number %d is listed as %s, but it is %s", nr, s.Name, kernel)
		}
		if s.Name == "clone3" && (s.Errno != unix.ENOSYS || s.Rule != nil) {
			t.Error("clone3 must be answered ENOSYS, never allowed")
		}
		if s.Why == "" {
			t.Errorf("%s: no reason given", s.Name)
		}
		for _, banned := range []string{"socket", "connect", "bind", "listen", "accept", "accept4", "execve", "execveat", "ptrace", "fork", "vfork", "bpf", "mount", "setns", "unshare", "kexec_load", "init_module"} {
			if s.Name == banned {
				t.Errorf("%s is in the allowlist", banned)
			}
		}
	}
	for _, action := range []SeccompAction{SeccompErrno, SeccompKill} {
		prog, err := Program(action)
		if err != nil {
			t.Fatal(err)
		}
		// 3 to check the architecture and load the number, two for clone3's
		// ENOSYS, one jump per other call but clone, 5 for clone's argument
		// check, allow and kill.
		if len(prog) != len(list)+10 {
			t.Errorf("%v: %d instructions for %d calls", action, len(prog), len(list))
		}
	}
}
