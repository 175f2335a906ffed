package runtime

import (
	"io/fs"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ampoule-run/ampoule/shim"
)

// confinedFS is wazero's directory file system with every path first
// resolved by the kernel beneath its root (shim.Root). wazero alone stops
// ".." but follows symbolic links out of a preopened directory, both those
// that lay there and those the guest makes. WASI preview 1 has no threads,
// so the guest cannot change a path between the check and the operation.
type confinedFS struct {
	experimentalsys.FS
	root *shim.Root
}

func newConfinedFS(root *shim.Root, writable bool) experimentalsys.FS {
	var inner experimentalsys.FS = sysfs.DirFS(root.Path())
	if !writable {
		inner = &sysfs.ReadFS{FS: inner}
	}
	return &confinedFS{FS: inner, root: root}
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
	return c.FS.OpenFile(name, flag, perm)
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
