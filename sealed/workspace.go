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
// returns how many. Only this user's are touched, and only those whose
// launcher's pid is gone.
func Sweep(base string) int {
	entries, err := os.ReadDir(base)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), workspacePrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if st, ok := info.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue // alive, or not ours to know
		}
		if os.RemoveAll(filepath.Join(base, e.Name())) == nil {
			n++
		}
	}
	return n
}

// NewWorkspace makes a private (0700) directory in memory where the sealed
// mount lives in plaintext while the workload runs; the caller removes it.
// It refuses rather than fall back to a disk.
func NewWorkspace(bases []string) (string, error) {
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
		return dir, nil
	}
	return "", fmt.Errorf("%w: tried %s", ErrNoWorkspace, strings.Join(tried, ", "))
}
