package sealed

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/internal/regfile"
)

// ReadDir collects the tree under root: directories, regular files and
// symbolic links (never followed), in an order Check accepts. It fails with
// ErrTooLarge past max bytes, and on anything else (a device, a pipe) the
// workload cannot have made through WASI.
func ReadDir(root string, max int64) ([]Entry, error) {
	var entries []Entry
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := Entry{Path: filepath.ToSlash(rel), Mode: info.Mode().Perm(), ModTime: info.ModTime().UTC()}
		switch {
		case d.IsDir():
			e.Kind = Dir
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Kind, e.Data = Symlink, []byte(target)
		case d.Type().IsRegular():
			if total+e.Size()+info.Size() > max {
				return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
			}
			e.Kind = File
			if e.Data, err = readFile(p, info.Size()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is a %v, which a sealed mount cannot hold", e.Path, d.Type())
		}
		total += e.Size()
		if total > max {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// readFile reads a regular file without following a link in its last
// element, and at most size bytes (what Lstat said a moment before).
func readFile(p string, size int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != size {
		return nil, fmt.Errorf("%s changed while it was read", p)
	}
	return data, nil
}

// WriteDir recreates a tree (as Open returns it) under root, an empty
// directory. Nothing is created through a link: every parent is a
// directory WriteDir made itself, and files are made with O_EXCL and
// O_NOFOLLOW.
func WriteDir(root string, entries []Entry) error {
	if err := Check(entries, int64(^uint64(0)>>1)); err != nil {
		return err
	}
	for i := range entries {
		e := &entries[i]
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		switch e.Kind {
		case Dir:
			// Owner access, so the rest of the tree can be made inside.
			if err := os.Mkdir(p, e.Mode|0o700); err != nil {
				return err
			}
		case File:
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, e.Mode)
			if err != nil {
				return err
			}
			_, werr := f.Write(e.Data)
			cerr := f.Close()
			if err := errors.Join(werr, cerr); err != nil {
				return err
			}
			if err := os.Chmod(p, e.Mode); err != nil {
				return err
			}
		case Symlink:
			if err := os.Symlink(string(e.Data), p); err != nil {
				return err
			}
		}
	}
	// Times last, deepest first, so that making the children does not
	// move a directory's time.
	for i := len(entries) - 1; i >= 0; i-- {
		e := &entries[i]
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		ts := []unix.Timespec{unix.NsecToTimespec(e.ModTime.UnixNano()), unix.NsecToTimespec(e.ModTime.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting the time of %s: %w", e.Path, err)
		}
	}
	return nil
}

// Load reads and opens the store at file under key, whoever sealed it. A
// missing file is an empty tree (a first run), reported by found == false.
// A file that is not a regular file (a FIFO, a device) is refused with
// regfile.ErrNotRegular, without blocking and before a byte is read.
func Load(file string, key []byte, max int64) (entries []Entry, found bool, err error) {
	data, found, err := readStore(file, max)
	if err != nil || !found {
		return nil, found, err
	}
	entries, err = Open(key, data, max)
	return entries, true, err
}

// Load reads the store at file as Load does and opens it for the run, as
// Keys.Open does.
func (k *Keys) Load(file string, max int64) (Opened, bool, error) {
	data, found, err := readStore(file, max)
	if err != nil || !found {
		return Opened{}, found, err
	}
	o, err := k.Open(data, max)
	return o, true, err
}

// readStore reads the store at file, at most what a store of max_size max
// can be.
func readStore(file string, max int64) ([]byte, bool, error) {
	f, _, err := regfile.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	limit := MaxStore(max)
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, true, err
	}
	if int64(len(data)) > limit {
		return nil, true, fmt.Errorf("%w: the file is larger than a store of max_size %d can be", ErrTampered, max)
	}
	return data, true, nil
}

// ErrBusy: another run holds the store.
var ErrBusy = errors.New("another run holds the sealed store")

// Lock takes the store's lock (an flock on FILE.lock beside it) for one
// run, from opening the store to sealing it back, so that two runs never
// both start from one store and lose one's writes. It does not wait: a
// held lock is ErrBusy.
func Lock(file string) (unlock func(), err error) {
	f, err := os.OpenFile(file+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrBusy, file)
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Writable reports whether Save could write file: it makes and removes a
// temporary file beside it.
func Writable(file string) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	tmp.Close()
	return os.Remove(tmp.Name())
}

// Save seals the tree into file under key, naming sealer, atomically: a
// temporary file in the same directory, synced, then renamed over the old
// store. A failure leaves the old store as it was.
func Save(file string, key []byte, sealer [48]byte, entries []Entry, max int64) error {
	store, err := Seal(key, sealer, entries, max)
	if err != nil {
		return err
	}
	return saveStore(file, store)
}

// saveStore writes a sealed store into file as Save does.
func saveStore(file string, store []byte) error {
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(store)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
