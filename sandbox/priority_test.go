package sandbox

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// policies counts the scheduling policies of process pid's threads.
func policies(t *testing.T, pid int) map[uint32]int {
	t.Helper()
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	n := map[uint32]int{}
	for _, e := range entries {
		tid, _ := strconv.Atoi(e.Name())
		attr, err := unix.SchedGetAttr(tid, 0)
		if err != nil {
			continue // gone
		}
		n[attr.Policy]++
	}
	return n
}

// A runner made by PrepareIdle idles at SCHED_IDLE, every thread of it,
// while none of the supervisor's threads is left so; the run that takes
// it runs with every thread at the ordinary policy from before its first
// instruction (seen from BeforeStart, before the runner is told to go)
// to its end.
func TestPrepareIdleRaisedForItsRun(t *testing.T) {
	if !CanIdle() {
		t.Skip("this process cannot give a thread the ordinary policy back (no CAP_SYS_NICE, RLIMIT_NICE below 20): PrepareIdle is Prepare here")
	}
	s, _, _ := spec(t, "hello", "Ada")
	w, err := PrepareIdle(testExe(t), s)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Kill()
	select {
	case <-w.Ready():
	case <-time.After(60 * time.Second):
		t.Fatal("the idle runner never compiled")
	}
	if p := policies(t, w.PID()); p[unix.SCHED_IDLE] == 0 || len(p) != 1 {
		t.Errorf("the idle runner's threads: %v, want all SCHED_IDLE (%d)", p, unix.SCHED_IDLE)
	}
	if p := policies(t, os.Getpid()); p[unix.SCHED_IDLE] != 0 {
		t.Errorf("the supervisor's threads: %v, none may be SCHED_IDLE", p)
	}
	var out bytes.Buffer
	var during map[uint32]int
	res, err := w.Run(context.Background(), nil, &out, nil, Hooks{BeforeStart: func(pid int) error {
		during = policies(t, pid)
		return nil
	}})
	if err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), "Hello, Ada") {
		t.Fatalf("%+v %v %q", res, err, out.String())
	}
	if during[unix.SCHED_IDLE] != 0 || during[unix.SCHED_NORMAL] == 0 {
		t.Errorf("the run's threads: %v, want all SCHED_NORMAL", during)
	}
}

// Prepare, for a caller that asks for nothing else, makes its runner at
// the ordinary policy.
func TestPrepareOrdinaryPolicy(t *testing.T) {
	s, _, _ := spec(t, "hello")
	w, err := Prepare(testExe(t), s)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Kill()
	<-w.Ready()
	if p := policies(t, w.PID()); p[unix.SCHED_IDLE] != 0 {
		t.Errorf("a runner of Prepare: %v, none may be SCHED_IDLE", p)
	}
}
