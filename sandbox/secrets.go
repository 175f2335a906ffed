package sandbox

import (
	"bytes"
	"io"
	"io/fs"
	"slices"
	"sync"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// SecretsDir is where the guest reads Spec.Secrets, one read-only file
// each.
const SecretsDir = "/run/secrets"

// newSecretFS is the file system mounted at SecretsDir: one directory of
// the files secrets names, held in the runner's memory, never on a disk.
// Every change is refused with EROFS: opening to write, create, truncate
// or append, and every call that makes, removes, renames or retimes. Opens
// count against the open-files limit, as a mount's do.
func newSecretFS(secrets map[string][]byte, files *fileLimits) experimentalsys.FS {
	m := memFS{files: map[string][]byte{}, at: time.Now()}
	for name, v := range secrets {
		m.files[name] = v
	}
	return &secretFS{FS: &sysfs.AdaptFS{FS: m}, files: files}
}

type secretFS struct {
	experimentalsys.FS
	files *fileLimits
	// preopened is set once the mount's own directory was opened (its
	// preopen, which does not count).
	mu        sync.Mutex
	preopened bool
}

const writeFlags = experimentalsys.O_WRONLY | experimentalsys.O_RDWR | experimentalsys.O_CREAT |
	experimentalsys.O_TRUNC | experimentalsys.O_APPEND | experimentalsys.O_EXCL

func (s *secretFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	if flag&writeFlags != 0 {
		return nil, experimentalsys.EROFS
	}
	s.mu.Lock()
	counted := s.preopened || (path != "." && path != "")
	if !counted {
		s.preopened = true
	}
	s.mu.Unlock()
	if counted {
		if e := s.files.opening(); e != 0 {
			return nil, e
		}
	}
	f, e := s.FS.OpenFile(path, flag, perm)
	if e != 0 {
		if counted {
			s.files.closed()
		}
		return nil, e
	}
	return &secretFile{File: f, fs: s, counted: counted}, 0
}

func (s *secretFS) Mkdir(string, fs.FileMode) experimentalsys.Errno    { return experimentalsys.EROFS }
func (s *secretFS) Chmod(string, fs.FileMode) experimentalsys.Errno    { return experimentalsys.EROFS }
func (s *secretFS) Rename(string, string) experimentalsys.Errno        { return experimentalsys.EROFS }
func (s *secretFS) Rmdir(string) experimentalsys.Errno                 { return experimentalsys.EROFS }
func (s *secretFS) Link(string, string) experimentalsys.Errno          { return experimentalsys.EROFS }
func (s *secretFS) Symlink(string, string) experimentalsys.Errno       { return experimentalsys.EROFS }
func (s *secretFS) Unlink(string) experimentalsys.Errno                { return experimentalsys.EROFS }
func (s *secretFS) Utimens(string, int64, int64) experimentalsys.Errno { return experimentalsys.EROFS }

// secretFile is an open secret, or the directory: nothing written to it.
type secretFile struct {
	experimentalsys.File
	fs      *secretFS
	counted bool
	closed  bool
}

func (f *secretFile) Write([]byte) (int, experimentalsys.Errno) { return 0, experimentalsys.EBADF }
func (f *secretFile) Pwrite([]byte, int64) (int, experimentalsys.Errno) {
	return 0, experimentalsys.EBADF
}
func (f *secretFile) Truncate(int64) experimentalsys.Errno       { return experimentalsys.EROFS }
func (f *secretFile) Chmod(fs.FileMode) experimentalsys.Errno    { return experimentalsys.EROFS }
func (f *secretFile) Utimens(int64, int64) experimentalsys.Errno { return experimentalsys.EROFS }
func (f *secretFile) SetAppend(bool) experimentalsys.Errno       { return experimentalsys.EROFS }
func (f *secretFile) Datasync() experimentalsys.Errno            { return 0 }
func (f *secretFile) Sync() experimentalsys.Errno                { return 0 }
func (f *secretFile) Stat() (sys.Stat_t, experimentalsys.Errno)  { return f.File.Stat() }
func (f *secretFile) Close() experimentalsys.Errno {
	if f.closed {
		return 0
	}
	f.closed = true
	if f.counted {
		f.fs.files.closed()
	}
	return f.File.Close()
}

// memFS is an io/fs.FS of one directory of read-only files in memory.
type memFS struct {
	files map[string][]byte
	at    time.Time
}

func (m memFS) Open(name string) (fs.File, error) {
	if name == "." {
		return &memDir{m: m}, nil
	}
	v, ok := m.files[name]
	if !ok || !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{info: memInfo{name: name, size: int64(len(v)), at: m.at}, Reader: bytes.NewReader(v)}, nil
}

type memInfo struct {
	name string
	size int64
	dir  bool
	at   time.Time
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return i.size }
func (i memInfo) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o500
	}
	return 0o400
}
func (i memInfo) ModTime() time.Time         { return i.at }
func (i memInfo) IsDir() bool                { return i.dir }
func (i memInfo) Sys() any                   { return nil }
func (i memInfo) Type() fs.FileMode          { return i.Mode().Type() }
func (i memInfo) Info() (fs.FileInfo, error) { return i, nil }

type memFile struct {
	info memInfo
	*bytes.Reader
}

func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *memFile) Close() error               { return nil }

var _ io.ReaderAt = (*memFile)(nil)
var _ io.Seeker = (*memFile)(nil)

type memDir struct {
	m    memFS
	read int
}

func (d *memDir) Stat() (fs.FileInfo, error) { return memInfo{name: ".", dir: true, at: d.m.at}, nil }
func (d *memDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: fs.ErrInvalid}
}
func (d *memDir) Close() error { return nil }

func (d *memDir) ReadDir(n int) ([]fs.DirEntry, error) {
	names := make([]string, 0, len(d.m.files))
	for name := range d.m.files {
		names = append(names, name)
	}
	slices.Sort(names)
	names = names[d.read:]
	if n > 0 && len(names) > n {
		names = names[:n]
	}
	if n > 0 && len(names) == 0 {
		return nil, io.EOF
	}
	d.read += len(names)
	out := make([]fs.DirEntry, len(names))
	for i, name := range names {
		out[i] = memInfo{name: name, size: int64(len(d.m.files[name])), at: d.m.at}
	}
	return out, nil
}
