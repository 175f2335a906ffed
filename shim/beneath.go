// Package shim is the boundary between a workload and its host: the table of
// host calls a profile allows, and the confinement of every path a workload
// names to the directories it was given.
package shim

import (
	"errors"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrEscape is returned for a path that would resolve outside its root: by
// "..", by an absolute or relative symbolic link, or by a magic link.
var ErrEscape = errors.New("path resolves outside its directory")

// Root is a host directory beneath which guest paths are resolved by the
// kernel (openat2 with RESOLVE_BENEATH), so that no "..", absolute path or
// symbolic link, whether it lay there before the run or the guest made it,
// reaches a host file outside it.
type Root struct {
	fd   int
	path string
	// whole is set for the host's own root directory, beneath which every
	// path lies; absolute links there are ordinary.
	whole bool
}

// OpenRoot opens dir as a Root. The directory stays open until Close.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &pathError{op: "open root", path: dir, err: err}
	}
	r := &Root{fd: fd, path: dir, whole: filepath.Clean(dir) == "/"}
	// Fail closed on a kernel without openat2 (before Linux 5.6): without
	// it no path could be confined.
	if err := r.try(".", unix.O_PATH|unix.O_CLOEXEC); err != nil {
		r.Close()
		if errors.Is(err, unix.ENOSYS) {
			err = errors.New("the kernel has no openat2 (Linux 5.6 or later is needed to confine paths)")
		}
		return nil, &pathError{op: "resolve beneath", path: dir, err: err}
	}
	return r, nil
}

// Path is the host directory.
func (r *Root) Path() string { return r.path }

// Close releases the directory.
func (r *Root) Close() error { return unix.Close(r.fd) }

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// Check reports whether name, relative to the root, stays beneath it. When
// follow is true a final symbolic link is followed too, as an open or stat
// would; when false it is not (lstat, unlink, readlink, rename, link).
//
// It returns nil when name exists beneath the root, or does not exist but
// its parent does (so it may be created there, and a dangling link it names
// points beneath the root); ErrEscape when resolution leaves the root; and
// nil for any other failure, which the real operation then reports itself.
//
// Absolute symbolic links are refused even when they point beneath the root
// (RESOLVE_BENEATH does not reinterpret them), except under the host's root
// directory itself.
func (r *Root) Check(name string, follow bool) error {
	if r.whole {
		return nil
	}
	name = clean(name)
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	err := r.try(name, flags)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EXDEV):
		return ErrEscape
	case errors.Is(err, unix.ENOENT):
		// Something on the way is missing. The parent directory must still
		// resolve beneath the root for a create to be confined.
		parent := path.Dir(name)
		if perr := r.try(parent, unix.O_PATH|unix.O_CLOEXEC); errors.Is(perr, unix.EXDEV) {
			return ErrEscape
		}
		return nil
	default:
		return nil
	}
}

func (r *Root) try(name string, flags uint64) error {
	fd, err := unix.Openat2(r.fd, name, &unix.OpenHow{Flags: flags, Resolve: resolve})
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// clean makes a guest path relative to the root; RESOLVE_BENEATH refuses
// absolute paths and the kernel does the rest.
func clean(name string) string {
	name = strings.TrimLeft(name, "/")
	if name == "" {
		return "."
	}
	return name
}

type pathError struct {
	op, path string
	err      error
}

func (e *pathError) Error() string { return e.op + " " + e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }
