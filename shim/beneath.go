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

// ErrMountRoot is returned for an operation that would remove, rename or
// replace the root directory itself.
var ErrMountRoot = errors.New("the directory itself cannot be removed or renamed")

// ErrDots is returned by Parent for a name whose last component is "." or
// "..": it names a directory, not an entry its parent holds.
var ErrDots = errors.New(`the last component is "." or ".."`)

// ErrBusy is returned when the kernel keeps answering that a rename raced a
// resolution: the operation is refused rather than retried forever.
var ErrBusy = errors.New("path resolution kept racing a rename")

// Root is a host directory, held open as a descriptor, beneath which guest
// paths are resolved by the kernel (openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_MAGICLINKS), so that no "..", absolute path or symbolic link,
// whether it lay there before the run, the guest made it or the host swaps
// it in while the run goes, reaches a host file outside it.
//
// Every operation is carried out on the object that was resolved: Open
// returns the descriptor it resolved, and Parent returns a descriptor of a
// name's directory with a single final component, on which the *at system
// calls act without following it. Nothing is ever re-resolved from the
// host path, so renaming or replacing the directory on the host, or moving
// it inside another mount, changes nothing of what the guest reaches.
type Root struct {
	fd   int
	path string
	// whole is set for the host's own root directory, beneath which every
	// path lies; links there resolve as they do on the host.
	whole bool
}

// OpenRoot opens dir as a Root. The directory stays open until Close.
func OpenRoot(dir string) (*Root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &pathError{op: "open root", path: dir, err: err}
	}
	r, err := newRoot(fd, dir)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return r, nil
}

// RootFromFD makes a Root of fd, an open directory descriptor (O_PATH is
// enough) that the Root then owns; dir names it in messages only.
func RootFromFD(fd int, dir string) (*Root, error) {
	return newRoot(fd, dir)
}

// Dup returns a new descriptor of the root's directory, for handing it to
// another process; the caller closes it.
func (r *Root) Dup() (int, error) {
	return unix.FcntlInt(uintptr(r.fd), unix.F_DUPFD_CLOEXEC, 0)
}

// OpenRootBeneath opens name, a relative path, as a Root beneath parent,
// itself resolved beneath parent: a link in name that leads out of parent,
// or an absolute one, is refused with ErrEscape.
func OpenRootBeneath(parent *Root, name string) (*Root, error) {
	fd, err := parent.Open(name, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, &pathError{op: "open root", path: filepath.Join(parent.path, name), err: err}
	}
	r, err := newRoot(fd, filepath.Join(parent.path, name))
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return r, nil
}

func newRoot(fd int, dir string) (*Root, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &pathError{op: "stat root", path: dir, err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, &pathError{op: "open root", path: dir, err: unix.ENOTDIR}
	}
	r := &Root{fd: fd, path: dir, whole: filepath.Clean(dir) == "/" && st.Ino == rootIno()}
	// Fail closed on a kernel without openat2 (before Linux 5.6): without
	// it no path could be confined.
	probe, err := r.openat2(".", unix.O_PATH, 0)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			err = errors.New("the kernel has no openat2 (Linux 5.6 or later is needed to confine paths)")
		}
		return nil, &pathError{op: "resolve beneath", path: dir, err: err}
	}
	unix.Close(probe)
	return r, nil
}

// rootIno is the inode of the host's "/", so that only the real root
// directory, not a directory reached through a link named "/", resolves
// absolute links as the host does.
func rootIno() uint64 {
	var st unix.Stat_t
	if unix.Stat("/", &st) != nil {
		return 0
	}
	return st.Ino
}

// Path is the host directory as it was named when opened; it is for
// messages only, never for reaching a file.
func (r *Root) Path() string { return r.path }

// FD is the root's own descriptor (O_PATH). It stays owned by the Root.
func (r *Root) FD() int { return r.fd }

// Close releases the directory.
func (r *Root) Close() error { return unix.Close(r.fd) }

// retries bounds how often a resolution that raced a rename (EAGAIN from
// openat2) is tried again before the operation is refused.
const retries = 16

// Open resolves name beneath the root and opens it with flags (O_CLOEXEC
// is always added, and O_NOCTTY unless O_PATH) and mode, returning the descriptor the
// kernel resolved. A final symbolic link is followed unless flags hold
// O_NOFOLLOW; with O_CREAT a dangling link is followed too, still beneath
// the root. A path leaving the root fails with ErrEscape; every other
// failure is the kernel's own error, never success.
func (r *Root) Open(name string, flags int, mode uint32) (int, error) {
	return r.openat2(clean(name), flags, mode)
}

func (r *Root) openat2(name string, flags int, mode uint32) (int, error) {
	flags |= unix.O_CLOEXEC
	if flags&unix.O_PATH == 0 {
		flags |= unix.O_NOCTTY // openat2 refuses it beside O_PATH
	}
	how := unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	if r.whole {
		how.Resolve = 0 // the host's "/": nothing to confine to
	}
	if flags&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		how.Mode = uint64(mode)
	}
	for range retries {
		fd, err := unix.Openat2(r.fd, name, &how)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.EAGAIN):
			continue
		case errors.Is(err, unix.EXDEV):
			return -1, ErrEscape
		default:
			return -1, err
		}
	}
	return -1, ErrBusy
}

// StatHere stats name in the root's own directory with one system call
// when that needs no resolution: name is a single component (no slash, not
// "." or "..") and what it names is not a link the caller would follow.
// fstatat on the root's descriptor, not following, reaches nothing past
// the directory that descriptor holds, whatever the host has put there.
// done is false when the caller must resolve name beneath the root
// instead (Open); an error other than ENOENT is left to that resolution
// too, so that it is the full resolution's own.
func (r *Root) StatHere(name string, follow bool) (st unix.Stat_t, done bool, err error) {
	name = strings.TrimLeft(name, "/")
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return unix.Stat_t{}, false, nil
	}
	err = unix.Fstatat(r.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && follow && st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return unix.Stat_t{}, false, nil
	case err == nil:
		return st, true, nil
	case errors.Is(err, unix.ENOENT):
		return unix.Stat_t{}, true, err
	default:
		return unix.Stat_t{}, false, nil
	}
}

// Parent resolves the directory that holds name beneath the root and
// returns a descriptor of it (O_PATH, the caller closes it) with name's
// last component, a single name that the caller's *at system call must not
// follow. It fails with ErrMountRoot when name is the root itself, with
// ErrDots when the last component is "." or "..", and with ErrEscape when
// the directory resolves outside the root. A trailing slash is dropped
// from the component and reported in dirOnly, so that the caller can
// require a directory without letting the kernel follow a link there.
func (r *Root) Parent(name string) (dirfd int, base string, dirOnly bool, err error) {
	name = clean(name)
	dirOnly = strings.HasSuffix(name, "/")
	name = strings.TrimRight(name, "/")
	if name == "" || name == "." {
		return -1, "", false, ErrMountRoot
	}
	dir, base := path.Split(name)
	if base == "." || base == ".." {
		// Not a name the parent holds: the directory itself or its parent.
		fd, err := r.openat2(name, unix.O_PATH, 0)
		if err != nil {
			return -1, "", false, err
		}
		unix.Close(fd)
		return -1, "", false, ErrDots
	}
	if dir == "" {
		dir = "."
	}
	fd, err := r.openat2(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", false, err
	}
	return fd, base, dirOnly, nil
}

// clean makes a guest path relative to the root; RESOLVE_BENEATH refuses
// absolute paths, and the kernel resolves "..", refusing it above the root.
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
