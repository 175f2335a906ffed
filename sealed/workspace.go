package sealed

import (
	"fmt"
	"os"
	"strings"

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
		dir, err := os.MkdirTemp(base, "ampoule-sealed-")
		if err != nil {
			tried = append(tried, base+" ("+err.Error()+")")
			continue
		}
		return dir, nil
	}
	return "", fmt.Errorf("%w: tried %s", ErrNoWorkspace, strings.Join(tried, ", "))
}
