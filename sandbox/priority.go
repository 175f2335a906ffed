package sandbox

import (
	"bytes"
	"os"
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

// idleArg follows RunnerArg for a runner that is to idle (PrepareIdle).
const idleArg = "idle"

// lowerSelf sets every thread of this process to SCHED_IDLE, over and
// over until a pass finds none left to set: a thread made meanwhile
// inherits from a thread that may not have been set yet. Lowering needs
// no privilege. It runs in the runner itself, first thing: the supervisor
// runs none of its own code at idle priority, where a starved thread
// holding one of its locks (the fork lock, a Go P) would stall every run.
func lowerSelf() {
	setAll(os.Getpid(), unix.SCHED_NORMAL, unix.SCHED_IDLE)
}

// raise gives every thread of process pid the ordinary policy
// (SCHED_NORMAL, nice 0). It reports whether every thread it found is
// ordinary now.
func raise(pid int) bool {
	return setAll(pid, unix.SCHED_IDLE, unix.SCHED_NORMAL)
}

// setAll sets each thread of process pid that has policy from to policy
// to, going over the threads again until a pass finds none left with
// from, since threads made while it works inherit from one it may not
// have reached yet. It reports whether a pass found none.
func setAll(pid int, from, to uint32) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	for range 8 {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return false // gone
		}
		changed := false
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			attr, err := unix.SchedGetAttr(tid, 0)
			if err != nil || attr.Policy != from {
				continue
			}
			changed = true
			if err := unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: to}, 0); err != nil && err != unix.ESRCH {
				return false
			}
		}
		if !changed {
			return true
		}
	}
	return false
}
