package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A warm runner is made in the background, for a run that has not come
// yet: on a machine with few cores its start and its load from the
// compilation cache (tens of ms of CPU) compete with the run going. Made
// at idle priority (SCHED_IDLE), it takes only the CPU nothing else wants,
// and it is given the ordinary policy back the moment a run takes it.
// Giving it back needs CAP_SYS_NICE (or an RLIMIT_NICE that allows nice
// 0): a supervisor without it makes its warm runners at the ordinary
// priority, as before, since a run must never be left at idle priority.

// capSysNice is CAP_SYS_NICE's bit in a capability set.
const capSysNice = 23

// CanIdle reports whether this process may make warm runners at idle
// priority: whether it can give a runner the ordinary policy back.
func CanIdle() bool {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NICE, &rl) == nil && rl.Cur >= 20 {
		return true // nice 0 is within the limit
	}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("CapEff:")); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(string(v)), 16, 64)
			return err == nil && caps&(1<<capSysNice) != 0
		}
	}
	return false
}

// startIdle runs start (which starts a process) on a thread of its own
// set to SCHED_IDLE, which the process inherits with every thread it
// makes, and then sets the thread back to the ordinary policy. The thread
// cannot simply be discarded: a runner dies with the thread that started
// it (its parent-death signal). If setting it back fails, the process
// start made is killed by kill and the thread is discarded with it, so
// that no thread of this process is left at idle priority.
func startIdle(start func() error, kill func()) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0); err != nil {
			// Not at idle priority: started as any runner is.
			runtime.UnlockOSThread()
			done <- start()
			return
		}
		err := start()
		if rerr := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0); rerr != nil {
			// Locked still: the thread goes with the goroutine.
			if err == nil {
				kill()
				err = fmt.Errorf("setting the starting thread back to the ordinary policy: %v", rerr)
			}
			done <- err
			return
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}

// raise gives every thread of process pid the ordinary policy (SCHED_NORMAL,
// nice 0). Threads made while it works inherit from one it may not have
// reached yet, so it goes over the threads again until a pass finds none
// left at idle priority. It reports whether every thread it found is
// ordinary now.
func raise(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	for range 8 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return false // gone: nothing left to raise
		}
		changed := false
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			attr, err := unix.SchedGetAttr(tid, 0)
			if err != nil || attr.Policy != unix.SCHED_IDLE {
				continue
			}
			changed = true
			if err := unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0); err != nil && err != unix.ESRCH {
				return false
			}
		}
		if !changed {
			return true
		}
	}
	return false
}
