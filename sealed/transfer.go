package sealed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/ampoule-run/ampoule/errcode"
)

// lock takes file's lock as OpenMount does, with its errors.
func lock(file string) (func(), error) {
	unlock, err := Lock(file)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		dir := filepath.Dir(file)
		return nil, errcode.Errorf(errcode.SealedDirMissing, "the sealed store %s: its directory %s does not exist or is not a directory", file, dir).
			WithHint("create it (mkdir -p -m 700 " + dir + "), or pass --sealed FILE in a directory that exists").Host()
	}
	if err != nil {
		return nil, Error(err, file)
	}
	return unlock, nil
}

// Export opens the store at file for keys, as a run would (an accepted
// version's store too), and writes its tree into dir: a new directory (mode
// 0700), or an empty one. The store is not changed. A missing store is
// E1001, a non-empty dir E1031. Every error carries a registered code.
func Export(file string, keys *Keys, max int64, dir string) (Opened, error) {
	unlock, err := lock(file)
	if err != nil {
		return Opened{}, err
	}
	defer unlock()
	o, found, err := keys.Load(file, max)
	if err != nil {
		return Opened{}, Error(err, file)
	}
	if !found {
		return Opened{}, errcode.Errorf(errcode.Usage, "there is no sealed store %s", file).
			WithHint("pass --sealed FILE naming the store; a bundle's default store is made by its first run").Host()
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return Opened{}, errcode.Errorf(errcode.Usage, "making %s: %v", dir, err).WithHint("pass -o DIR in a directory that exists").Host()
	}
	names, err := os.ReadDir(dir)
	switch {
	case err != nil:
		return Opened{}, errcode.Errorf(errcode.Usage, "%s: %v", dir, err).WithHint("pass -o DIR naming a directory, new or empty").Host()
	case len(names) > 0:
		return Opened{}, errcode.Errorf(errcode.OutputExists, "%s is not empty: the store's files are written only into a new or empty directory", dir).
			WithHint("pass -o DIR naming a new or empty directory").Host()
	}
	if err := WriteDir(dir, o.Entries); err != nil {
		return Opened{}, errcode.Errorf(errcode.SealedStoreIO, "writing the store's files into %s: %v", dir, err)
	}
	return o, nil
}

// Import seals the tree under dir into a new store at file, under keys'
// key and as keys' measurement's. A store already at file is E1031 (it is
// never replaced); a tree that is not a plain one of directories, files
// and links, or larger than max, is E1035. It returns the number of
// entries sealed.
func Import(file string, keys *Keys, max int64, dir string) (int, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return 0, errcode.Errorf(errcode.SealedImportInvalid, "%s: %v", dir, err).WithHint("pass the directory whose files the store is to hold").Host()
	}
	unlock, err := lock(file)
	if err != nil {
		return 0, err
	}
	defer unlock()
	if _, err := os.Lstat(file); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return 0, errcode.Errorf(errcode.OutputExists, "the sealed store %s exists, and import never replaces a store", file).
			WithHint("import into a new --sealed FILE, or remove " + file + " first").Host()
	}
	entries, err := ReadDir(dir, max)
	if err != nil {
		return 0, errcode.Errorf(errcode.SealedImportInvalid, "%s: %v", dir, err).Host()
	}
	if err := keys.Save(file, entries, max); err != nil {
		return 0, Error(fmt.Errorf("sealing %s: %w", dir, err), file)
	}
	return len(entries), nil
}
