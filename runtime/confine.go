package runtime

import (
	"io/fs"
	"sync"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/shim"
)

// confinedFS is wazero's directory file system with every path first
// resolved by the kernel beneath its root (shim.Root). wazero alone stops
// ".." but follows symbolic links out of a preopened directory, both those
// that lay there and those the guest makes. WASI preview 1 has no threads,
// so the guest cannot change a path between the check and the operation.
type confinedFS struct {
	experimentalsys.FS
	root  *shim.Root
	files *fileLimits
	// preopened is set once wazero has opened the mount's own root, which
	// the open-files limit does not count.
	preopened bool
}

func newConfinedFS(root *shim.Root, writable bool, files *fileLimits) experimentalsys.FS {
	var inner experimentalsys.FS = sysfs.DirFS(root.Path())
	if !writable {
		inner = &sysfs.ReadFS{FS: inner}
	}
	return &confinedFS{FS: inner, root: root, files: files}
}

// fileLimits counts, across every mount of a run, the files open at once
// and the bytes written into files. A breach ends the run through hit; the
// call that breached fails (EPERM) in case the guest runs on a
// moment.
type fileLimits struct {
	mu         sync.Mutex
	open       int
	maxOpen    int // 0: no bound
	written    int64
	maxWritten int64 // 0: no bound
	hit        func(errcode.Code)
}

func (l *fileLimits) opening() experimentalsys.Errno {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxOpen > 0 && l.open >= l.maxOpen {
		l.hit(errcode.OpenFilesLimit)
		return experimentalsys.EPERM
	}
	l.open++
	return 0
}

func (l *fileLimits) closed() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
}

func (l *fileLimits) writing(n int) experimentalsys.Errno {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxWritten > 0 && l.written+int64(n) > l.maxWritten {
		l.hit(errcode.FileOutputLimit)
		return experimentalsys.EPERM
	}
	l.written += int64(n)
	return 0
}

// countedFile is an open file of a confined mount, counted by its limits.
type countedFile struct {
	experimentalsys.File
	limits *fileLimits
	closed bool
}

func (f *countedFile) Write(buf []byte) (int, experimentalsys.Errno) {
	if e := f.limits.writing(len(buf)); e != 0 {
		return 0, e
	}
	return f.File.Write(buf)
}

func (f *countedFile) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if e := f.limits.writing(len(buf)); e != 0 {
		return 0, e
	}
	return f.File.Pwrite(buf, off)
}

func (f *countedFile) Close() experimentalsys.Errno {
	if !f.closed {
		f.closed = true
		f.limits.closed()
	}
	return f.File.Close()
}

func (c *confinedFS) check(name string, follow bool) experimentalsys.Errno {
	if c.root.Check(name, follow) != nil {
		return experimentalsys.EPERM
	}
	return 0
}

func (c *confinedFS) OpenFile(name string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if e := c.check(name, flag&experimentalsys.O_NOFOLLOW == 0); e != 0 {
		return nil, e
	}
	if !c.preopened && (name == "." || name == "") {
		c.preopened = true
		return c.FS.OpenFile(name, flag, perm)
	}
	if e := c.files.opening(); e != 0 {
		return nil, e
	}
	f, e := c.FS.OpenFile(name, flag, perm)
	if e != 0 {
		c.files.closed()
		return nil, e
	}
	return &countedFile{File: f, limits: c.files}, 0
}

func (c *confinedFS) Lstat(name string) (sys.Stat_t, experimentalsys.Errno) {
	if e := c.check(name, false); e != 0 {
		return sys.Stat_t{}, e
	}
	return c.FS.Lstat(name)
}

func (c *confinedFS) Stat(name string) (sys.Stat_t, experimentalsys.Errno) {
	if e := c.check(name, true); e != 0 {
		return sys.Stat_t{}, e
	}
	return c.FS.Stat(name)
}

func (c *confinedFS) Mkdir(name string, perm fs.FileMode) experimentalsys.Errno {
	if e := c.check(name, false); e != 0 {
		return e
	}
	return c.FS.Mkdir(name, perm)
}

func (c *confinedFS) Chmod(name string, perm fs.FileMode) experimentalsys.Errno {
	if e := c.check(name, true); e != 0 {
		return e
	}
	return c.FS.Chmod(name, perm)
}

func (c *confinedFS) Rename(from, to string) experimentalsys.Errno {
	if e := c.check(from, false); e != 0 {
		return e
	}
	if e := c.check(to, false); e != 0 {
		return e
	}
	return c.FS.Rename(from, to)
}

func (c *confinedFS) Rmdir(name string) experimentalsys.Errno {
	if e := c.check(name, false); e != 0 {
		return e
	}
	return c.FS.Rmdir(name)
}

func (c *confinedFS) Unlink(name string) experimentalsys.Errno {
	if e := c.check(name, false); e != 0 {
		return e
	}
	return c.FS.Unlink(name)
}

func (c *confinedFS) Link(oldName, newName string) experimentalsys.Errno {
	if e := c.check(oldName, false); e != 0 {
		return e
	}
	if e := c.check(newName, false); e != 0 {
		return e
	}
	return c.FS.Link(oldName, newName)
}

// Symlink may make a link to anywhere: the target is only text until a path
// through the link is used, and then it is resolved beneath the root.
func (c *confinedFS) Symlink(target, linkName string) experimentalsys.Errno {
	if e := c.check(linkName, false); e != 0 {
		return e
	}
	return c.FS.Symlink(target, linkName)
}

func (c *confinedFS) Readlink(name string) (string, experimentalsys.Errno) {
	if e := c.check(name, false); e != 0 {
		return "", e
	}
	return c.FS.Readlink(name)
}

func (c *confinedFS) Utimens(name string, atim, mtim int64) experimentalsys.Errno {
	if e := c.check(name, true); e != 0 {
		return e
	}
	return c.FS.Utimens(name, atim, mtim)
}
