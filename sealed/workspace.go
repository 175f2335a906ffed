package sealed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNoWorkspace: no memory-backed file system to hold the plaintext.
var ErrNoWorkspace = fmt.Errorf("no memory-backed directory (tmpfs) for the sealed mount's plaintext")

// WorkspaceBases are where a workspace may be made, in order: the user's
// runtime directory and /dev/shm. Each must be a tmpfs or ramfs.
func WorkspaceBases() []string {
	var bases []string
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		bases = append(bases, d)
	}
	return append(bases, "/dev/shm")
}

// MemoryBacked reports whether dir is on a file system held in memory
// (tmpfs or ramfs), whose pages never reach a disk but through swap.
func MemoryBacked(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}

// workspacePrefix starts every workspace's name, followed by the pid of
// the launcher that made it.
const workspacePrefix = "ampoule-sealed-"

// Sweep removes the workspaces in base that launchers which no longer run
// left behind (a launcher killed outright cannot remove its own), and
// returns how many. Only this user's are touched. A launcher holds an
// flock on its workspace's lock file (DIR.lock) for the workspace's life,
// so a lock Sweep can take marks a dead launcher's, whatever pid
// namespace it ran in; a workspace without a lock file is judged by its
// launcher's pid.
func Sweep(base string) int {
	entries, err := os.ReadDir(base)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), workspacePrefix)
		if !ok || !e.IsDir() || strings.HasSuffix(rest, ".lock") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if st, ok := info.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue
		}
		dir := filepath.Join(base, e.Name())
		if !abandoned(dir, rest) {
			continue
		}
		if os.RemoveAll(dir) == nil {
			os.Remove(dir + ".lock")
			n++
		}
	}
	return n
}

// abandoned reports whether the workspace dir (named workspacePrefix+rest)
// belongs to no running launcher.
func abandoned(dir, rest string) bool {
	f, err := os.OpenFile(dir+".lock", os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err == nil {
		defer f.Close()
		// Taken: its launcher is gone (the lock goes with the process).
		return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
	}
	pidText, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// NewWorkspace makes a private (0700) directory in memory where the sealed
// mount lives in plaintext while the workload runs, and holds its lock;
// release removes both. It refuses rather than fall back to a disk.
func NewWorkspace(bases []string) (dir string, release func(), err error) {
	var tried []string
	for _, base := range bases {
		if !MemoryBacked(base) {
			tried = append(tried, base)
			continue
		}
		Sweep(base)
		dir, err := os.MkdirTemp(base, fmt.Sprintf("%s%d-", workspacePrefix, os.Getpid()))
		if err != nil {
			tried = append(tried, base+" ("+err.Error()+")")
			continue
		}
		lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err == nil {
			err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		}
		if err != nil {
			if lock != nil {
				lock.Close()
			}
			os.Remove(dir + ".lock")
			os.RemoveAll(dir)
			tried = append(tried, base+" (its lock: "+err.Error()+")")
			continue
		}
		return dir, func() {
			os.RemoveAll(dir)
			os.Remove(dir + ".lock")
			lock.Close()
		}, nil
	}
	return "", nil, fmt.Errorf("%w: tried %s", ErrNoWorkspace, strings.Join(tried, ", "))
}
