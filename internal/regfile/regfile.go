// Package regfile opens files that must be regular files without ever
// blocking on one that is not: a named pipe (FIFO) opened for reading blocks
// until a writer comes, and a device can be read forever.
package regfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotRegular is the error, wrapped with the file's name and kind, for a
// file that is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// Open opens name for reading without blocking (O_NONBLOCK: a FIFO without
// a writer opens at once) and checks, on the descriptor it returns, that it
// is a regular file; anything else is closed and ErrNotRegular. Symbolic
// links are followed: what counts is the file they lead to. On a regular
// file O_NONBLOCK changes nothing.
func Open(name string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: it is %s", name, ErrNotRegular, Kind(st.Mode()))
	}
	return f, st, nil
}

// ReadFile is os.ReadFile for regular files only: anything else is refused
// with ErrNotRegular before a byte is read.
func ReadFile(name string) ([]byte, error) {
	f, st, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 0, min(max(st.Size(), 0), 64<<20)+1) // the size is a hint, never trusted for an allocation
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// Kind names what a file of mode m is, for messages.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}

// DirFS is an fs.FS of the directory dir, like os.DirFS, whose Open never
// blocks on a FIFO or a device: it opens with O_NONBLOCK and leaves the
// check to the caller's Stat of the file it got, which is the descriptor
// it then reads. Directories open too.
type DirFS string

// Open implements fs.FS.
func (d DirFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	f, err := os.OpenFile(filepath.Join(string(d), filepath.FromSlash(name)), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = name
			return nil, pe
		}
		return nil, err
	}
	return f, nil
}

// ReadBounded reads a regular file of at most max bytes (a FIFO or device is
// refused without blocking); past max it reads max+1, which its parser
// refuses.
func ReadBounded(path string, max int64) ([]byte, error) {
	f, _, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max+1))
}
