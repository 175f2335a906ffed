package sealed

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
)

// Mount is one run's sealed mount: the encrypted store on the host's
// disk, locked for the run, and the plaintext workspace in memory that the
// workload sees. OpenMount makes one; SealBack or Remove ends it.
type Mount struct {
	// File is the store; Workspace the plaintext directory to mount.
	File, Workspace string
	// Entries is how many entries were unpacked; Found whether a store
	// existed (a first run has none).
	Entries int
	Found   bool
	// From is the accepted measurement whose store was taken over, or nil
	// (the run's own store, or none). SealBack seals it as the run's own.
	From *[48]byte

	keys    *Keys
	max     int64
	unlock  func()
	release func() // removes the workspace, once
	id      int
	removed sync.Once
}

// open mounts, for RemoveAll.
var open struct {
	sync.Mutex
	next   int
	mounts map[int]*Mount
}

// OpenMount opens the store at file with keys (a missing store is a first
// run; see Keys.Open for whose stores open), locks it against other runs, checks that it can be written back,
// and unpacks it into a fresh memory-backed workspace. Nothing is changed
// on the host's disk until SealBack. The store's directory must exist
// (E1031 otherwise): it is never made here. max bounds the store's plaintext
// (max_size). Every error carries a registered code and a hint (Error).
func OpenMount(file string, keys *Keys, max int64) (*Mount, error) {
	m := &Mount{File: file, keys: keys, max: max}
	var err error
	if m.unlock, err = Lock(file); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			// Not made here: a mistyped path would start an empty store
			// somewhere new, and the run would go on without its data.
			dir := filepath.Dir(file)
			return nil, errcode.Errorf(errcode.SealedDirMissing, "the sealed store %s: its directory %s does not exist or is not a directory", file, dir).
				WithHint("create it (mkdir -p -m 700 " + dir + "), or pass --sealed FILE in a directory that exists")
		}
		return nil, Error(err, file)
	}
	opened, found, err := keys.Load(file, max)
	if err != nil {
		m.unlock()
		return nil, Error(err, file)
	}
	entries := opened.Entries
	// The store is written after the run: find out now, before the
	// workload does any work, whether it can be.
	if err := Writable(file); err != nil {
		m.unlock()
		return nil, errcode.Errorf(errcode.SealedStoreIO, "the sealed store cannot be written: %v", err).
			WithHint("pass --sealed FILE in a directory that exists and is writable")
	}
	ws, release, err := NewWorkspace(WorkspaceBases())
	if err != nil {
		m.unlock()
		return nil, errcode.Errorf(errcode.WorkspaceUnavailable, "%v", err)
	}
	m.Workspace, m.release = ws, sync.OnceFunc(release)
	open.Lock()
	if open.mounts == nil {
		open.mounts = map[int]*Mount{}
	}
	m.id = open.next
	open.next++
	open.mounts[m.id] = m
	open.Unlock()
	if err := WriteDir(ws, entries); err != nil {
		m.Remove()
		return nil, errcode.Errorf(errcode.SealedStoreIO, "unpacking the sealed store into its workspace: %v", err)
	}
	m.Entries, m.Found, m.From = len(entries), found, opened.From
	return m, nil
}

// MaxBytes is the bound on the workspace's plaintext, max_size.
func (m *Mount) MaxBytes() int64 { return m.max }

// SealBack puts what the workload left in the workspace back into the
// store and removes the plaintext, whatever happens. A tree over max_size
// is not sealed and the old store stays (E4007). It returns the number of
// entries sealed.
func (m *Mount) SealBack() (int, error) {
	defer m.Remove()
	entries, err := ReadDir(m.Workspace, m.max)
	if err != nil {
		return 0, Error(err, m.File)
	}
	if err := m.keys.Save(m.File, entries, m.max); err != nil {
		return 0, Error(err, m.File)
	}
	return len(entries), nil
}

// Remove deletes the plaintext workspace, forgets the key and unlocks the
// store, without sealing anything. It may be called more than once.
func (m *Mount) Remove() {
	m.removed.Do(func() {
		open.Lock()
		delete(open.mounts, m.id)
		open.Unlock()
		m.release()
		clear(m.keys.Key)
		m.unlock()
	})
}

// RemoveAll removes the plaintext workspace of every mount this process
// still has open. A process about to exit without unwinding (a second
// signal, a run that does not stop in time) calls it, so that no plaintext
// outlives it.
func RemoveAll() {
	open.Lock()
	mounts := make([]*Mount, 0, len(open.mounts))
	for _, m := range open.mounts {
		mounts = append(mounts, m)
	}
	open.Unlock()
	for _, m := range mounts {
		m.Remove()
	}
}

// Error gives a sealed store's failure for file its registered code; an
// error that has one (Keys.Vouch's) keeps it.
func Error(err error, file string) error {
	var coded *errcode.Error
	switch {
	case errors.As(err, &coded):
		return err
	case errors.Is(err, ErrForeign):
		return errcode.Errorf(errcode.SealedStoreForeign, "%s: %v", file, err).
			WithHint("a store opens only for the measurement that sealed it (on its machine, or with its broker's key), or for a later version whose [sealed] accept_from names that measurement; under debug, launch sealed export writes its files out and launch sealed import seals them for another version; or pass --sealed FILE for another store")
	case errors.Is(err, ErrTampered):
		return errcode.Errorf(errcode.SealedStoreTampered, "%s: %v", file, err)
	case errors.Is(err, ErrBusy):
		return errcode.Errorf(errcode.SealedStoreBusy, "%v", err).
			WithHint("wait for the other run to end, or pass --sealed FILE for another store")
	case errors.Is(err, regfile.ErrNotRegular):
		return errcode.Errorf(errcode.Usage, "the sealed store %v", err).
			WithHint("pass --sealed FILE naming a regular file, or one that does not exist yet")
	case errors.Is(err, ErrTooLarge):
		return errcode.Errorf(errcode.SealedSizeLimit, "the sealed mount: %v; %s was kept as it was", err, file)
	}
	return errcode.Errorf(errcode.SealedStoreIO, "%s: %v", file, err)
}
