package sandbox

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// nobody is the ordinary user these tests run a launcher's processes as.
const nobody = 65534

// TestPtraceAttackerHelper is not a test: run by
// TestFreshRunnerIsNotTraceable as another process of the runner's user,
// it reads a pid and tries to attach to it, as fast as it can, until it
// is refused or attached, and says which.
func TestPtraceAttackerHelper(t *testing.T) {
	if os.Getenv("AMPOULE_PTRACE_ATTACKER") != "1" {
		return
	}
	runtime.LockOSThread()
	fmt.Println("ready")
	var pid int
	if _, err := fmt.Fscan(os.Stdin, &pid); err != nil {
		fmt.Println("no pid:", err)
		os.Exit(0)
	}
	for i := 0; i < 1000000; i++ {
		err := unix.PtraceSeize(pid)
		if err == nil {
			unix.PtraceDetach(pid)
			fmt.Println("attached")
			os.Exit(0)
		}
		if err == unix.EPERM {
			fmt.Println("refused")
			os.Exit(0)
		}
	}
	fmt.Println("gave up")
	os.Exit(0)
}

// TestFreshRunnerIsNotTraceable: the threat model closes ptrace and
// /proc/PID/mem of the launcher's processes to the host's other
// processes of the same user. A runner makes itself not dumpable (Protect)
// as it starts, but from its exec until then it is dumpable, and a process
// of its user that attaches in that window stays attached: it holds the
// runner, the module it will read and the secrets it will be sent. The
// attacker here is ready before the runner starts and is given its pid at
// once.
func TestFreshRunnerIsNotTraceable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running the launcher's processes as an ordinary user needs root")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "runner")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	asNobody := func() *syscall.SysProcAttr {
		return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}, Pdeathsig: syscall.SIGKILL}
	}
	attached := 0
	const tries = 10
	for range tries {
		attacker := exec.Command(exe, "-test.run=^TestPtraceAttackerHelper$")
		attacker.Env = []string{"AMPOULE_PTRACE_ATTACKER=1"}
		attacker.SysProcAttr = asNobody()
		in, err := attacker.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		outPipe, err := attacker.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := attacker.Start(); err != nil {
			t.Fatal(err)
		}
		out := bufio.NewReader(outPipe)
		if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("the attacker: %q %v", line, err)
		}
		specR, specW, _ := os.Pipe()
		resR, resW, _ := os.Pipe()
		mod, err := newModuleFile()
		if err != nil {
			t.Fatal(err)
		}
		runner := exec.Command(exe, RunnerArg)
		runner.Env = []string{}
		runner.ExtraFiles = []*os.File{specR, resW, mod}
		runner.SysProcAttr = asNobody()
		if err := runner.Start(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(in, runner.Process.Pid)
		line, _ := out.ReadString('\n')
		io.Copy(io.Discard, out)
		attacker.Wait()
		specW.Close()
		runner.Process.Kill()
		runner.Wait()
		for _, f := range []*os.File{specR, resR, resW, mod} {
			f.Close()
		}
		switch strings.TrimSpace(line) {
		case "attached":
			attached++
		case "refused":
		default:
			t.Fatalf("the attacker said %q", line)
		}
	}
	if attached > 0 {
		t.Errorf("another process of the runner's user attached to %d of %d fresh runners before they made themselves not dumpable", attached, tries)
	}
}
