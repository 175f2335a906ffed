package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// nobody is the ordinary user these tests run a launcher's processes as.
const nobody = 65534

// emptyModule is the smallest module: a runner compiles it at once and
// then waits to be told to run.
var emptyModule = []byte("\x00asm\x01\x00\x00\x00")

// TestPtraceSupervisorHelper is not a test: run by
// TestFreshRunnerIsNotTraceable as an ordinary user's protected
// launcher, it starts one warm runner of a protected run (Prepare, the
// path every runner takes) for each line on stdin, prints its pid once
// it has compiled, and kills it.
func TestPtraceSupervisorHelper(t *testing.T) {
	if os.Getenv("AMPOULE_PTRACE_SUPERVISOR") != "1" {
		return
	}
	if err := Protect(); err != nil {
		fmt.Println("protect:", err)
		os.Exit(1)
	}
	exe, _ := os.Executable()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		w, err := Prepare(exe, Spec{Module: emptyModule, MemoryPages: 1, WallTime: time.Minute, CompileTime: time.Minute, Protect: true})
		if err != nil {
			fmt.Println("prepare:", err)
			os.Exit(1)
		}
		select {
		case <-w.Ready():
		case <-w.Done():
		case <-time.After(20 * time.Second):
		}
		fmt.Println("runner", w.PID())
		w.Kill()
	}
	os.Exit(0)
}

// TestPtraceAttackerHelper is not a test: run by
// TestFreshRunnerIsNotTraceable as another process of the launcher's
// user, it watches /proc for the children of the launcher
// AMPOULE_PTRACE_LAUNCHER names and tries to attach to each, as fast as
// it can, from its fork until it is gone. It prints "attached PID" and
// ends at the first it holds, or ends when its stdin closes.
func TestPtraceAttackerHelper(t *testing.T) {
	parent := os.Getenv("AMPOULE_PTRACE_LAUNCHER")
	if parent == "" {
		return
	}
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	fmt.Println("ready")
	for {
		select {
		case <-stop:
			os.Exit(0)
		default:
		}
		for _, pid := range childrenOf(parent) {
			if err := unix.PtraceSeize(pid); err == nil {
				// Held: the tracee stops at its next signal until the
				// tracer's exit lets it go.
				fmt.Println("attached", pid)
				os.Exit(0)
			}
		}
	}
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid string) []int {
	names, _ := os.ReadDir("/proc")
	var kids []int
	for _, n := range names {
		p, err := strconv.Atoi(n.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + n.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		if f := strings.Fields(string(stat[i+1:])); len(f) > 1 && f[1] == pid {
			kids = append(kids, p)
		}
	}
	return kids
}

// TestFreshRunnerIsNotTraceable: the threat model closes ptrace and
// /proc/PID/mem of a protected run's processes to the host's other
// processes of the same user. A runner makes itself not dumpable as it
// starts, but exec makes a process dumpable again when its user may read
// its image, and a tracer attached before the runner's own Protect keeps
// its hold. So a protected runner of an ordinary user is exec'd from an
// image its user cannot read: an execute-only sealed copy of a readable
// launcher, or the launcher itself where it is installed unreadable
// (mode 0711). An attacker of the same user watching /proc for the
// launcher's children and attaching to each from its fork on gets none,
// either way.
func TestFreshRunnerIsNotTraceable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a launcher and an attacker as an ordinary user needs root")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o755, 0o711} {
		t.Run(fmt.Sprintf("launcher mode %o", mode), func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{filepath.Dir(dir), dir} {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			exe := filepath.Join(dir, "launch")
			if err := os.WriteFile(exe, data, mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(exe, mode); err != nil {
				t.Fatal(err)
			}
			attached := freshRunnersAttached(t, exe, 10)
			if len(attached) > 0 {
				t.Errorf("another process of the launcher's user attached to %d of 10 fresh runners: %v", len(attached), attached)
			}
		})
	}
}

// freshRunnersAttached runs exe as an ordinary user's launcher starting
// n runners, beside an attacker of the same user, and returns the lines
// of the attacker's successes.
func freshRunnersAttached(t *testing.T, exe string, n int) []string {
	asNobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}, Pdeathsig: syscall.SIGKILL}
	sup := exec.Command(exe, "-test.run=^TestPtraceSupervisorHelper$")
	sup.Env = []string{"AMPOULE_PTRACE_SUPERVISOR=1"}
	sup.SysProcAttr = asNobody
	supIn, _ := sup.StdinPipe()
	supOutPipe, _ := sup.StdoutPipe()
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { supIn.Close(); sup.Process.Kill(); sup.Wait() }()
	att := exec.Command(exe, "-test.run=^TestPtraceAttackerHelper$")
	att.Env = []string{"AMPOULE_PTRACE_LAUNCHER=" + strconv.Itoa(sup.Process.Pid)}
	att.SysProcAttr = asNobody
	attIn, _ := att.StdinPipe()
	attOutPipe, _ := att.StdoutPipe()
	if err := att.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { att.Process.Kill(); att.Wait() }()
	attOut := bufio.NewReader(attOutPipe)
	if line, err := attOut.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("the attacker: %q %v", line, err)
	}
	supOut := bufio.NewReader(supOutPipe)
	for range n {
		fmt.Fprintln(supIn, "go")
		line, err := supOut.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "runner ") {
			t.Fatalf("the launcher: %q %v", line, err)
		}
	}
	attIn.Close()
	rest, _ := io.ReadAll(attOut)
	var hits []string
	for _, l := range strings.Split(strings.TrimSpace(string(rest)), "\n") {
		if strings.HasPrefix(l, "attached ") {
			hits = append(hits, l)
		}
	}
	return hits
}
