package ampoule

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"syscall"

	"github.com/ampoule-run/ampoule/errcode"
)

// DefaultCacheDir is where a run whose profile allows a disk cache keeps
// compiled code when Config.CacheDir is empty: ampoule/wazero under the
// user's cache directory ($XDG_CACHE_HOME, or ~/.cache).
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "ampoule", "wazero"), nil
}

// CacheStats describes a compile cache: its directory, how many compiled
// modules it holds (and wazero versions it holds them for), and their size.
type CacheStats struct {
	Dir      string   `json:"path"`
	Entries  int      `json:"entries"`
	Bytes    int64    `json:"bytes"`
	Versions []string `json:"versions"`
	// Exists is false for a cache never made: nothing is in it.
	Exists bool `json:"exists"`
}

// A compile cache is what wazero makes: one directory per wazero version,
// architecture and OS, holding one file per compiled module named by its
// SHA-256 key (and, briefly, a temporary file beside it while it is
// written); beside them, a launcher's kept inspections of modules
// (inspected-KEY), its marks of modules compiled into the cache
// (compiled-KEY, see sandbox.MarkCompiled) and, in the authenticated
// cache's disk tier of staging and production, its MAC'd entries
// (KEY.code). Nothing else.
// They are compiled when first used, not as the package initialises: every
// process of the launcher, a runner too, would pay for them at start-up.
var (
	cacheVersionRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^wazero-[A-Za-z0-9.+_-]+-[a-z0-9]+-[a-z0-9]+$`)
	})
	cacheEntryRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9a-f]{64}(\.[0-9]+\.tmp)?$`) })
	cacheFileRE  = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^((inspected|compiled)-[0-9a-f]{64}|[0-9a-f]{32}\.code)(\.[0-9a-f]+\.tmp)?$`)
	})
)

// CacheInfo reads the compile cache in dir, checking first that it is one
// (see PruneCache). A directory that does not exist is an empty cache.
func CacheInfo(dir string) (CacheStats, error) {
	st, _, err := scanCache(dir)
	return st, err
}

// PruneCache removes every compiled module from the compile cache in dir
// and the version directories that held them, leaving dir itself, and
// returns what it removed. It removes nothing unless everything in dir is
// what a compile cache holds (E1046 cache-foreign otherwise): a directory
// named by mistake, a home directory or a project, is left untouched. It
// works beneath dir alone (os.Root), never following a link out of it.
func PruneCache(dir string) (CacheStats, error) {
	st, files, err := scanCache(dir)
	if err != nil || !st.Exists {
		return st, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, errcode.Errorf(errcode.CacheUnavailable, "compile cache %s: %v", dir, err)
	}
	defer root.Close()
	for _, f := range files {
		if err := root.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return st, errcode.Errorf(errcode.CacheUnavailable, "pruning the compile cache %s: %v", dir, err)
		}
	}
	for _, v := range st.Versions {
		// A run compiling meanwhile may have added a file: its directory stays.
		if err := root.Remove(v); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTEMPTY) {
			return st, errcode.Errorf(errcode.CacheUnavailable, "pruning the compile cache %s: %v", dir, err)
		}
	}
	return st, nil
}

// scanCache checks that dir holds only what a compile cache holds and
// returns its stats and its files (paths relative to dir).
func scanCache(dir string) (CacheStats, []string, error) {
	st := CacheStats{Dir: dir, Versions: []string{}}
	foreign := func(format string, args ...any) (CacheStats, []string, error) {
		return st, nil, errcode.Errorf(errcode.CacheForeign, "%s: %s", dir, fmt.Sprintf(format, args...)).
			WithHint("name the directory --cache-dir names (default " + defaultCacheHint() + "); launch removes nothing from any other")
	}
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st, nil, nil
	case err != nil:
		return st, nil, errcode.Errorf(errcode.CacheUnavailable, "compile cache %s: %v", dir, err)
	case !fi.IsDir():
		return foreign("not a directory")
	}
	st.Exists = true
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, nil, errcode.Errorf(errcode.CacheUnavailable, "compile cache %s: %v", dir, err)
	}
	defer root.Close()
	top, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return st, nil, errcode.Errorf(errcode.CacheUnavailable, "compile cache %s: %v", dir, err)
	}
	var files []string
	for _, v := range top {
		if v.Type().IsRegular() && cacheFileRE().MatchString(v.Name()) {
			info, err := v.Info()
			if err != nil {
				return st, nil, errcode.Errorf(errcode.CacheUnavailable, "compile cache %s: %v", dir, err)
			}
			if filepath.Ext(v.Name()) == ".code" {
				st.Entries++
			}
			st.Bytes += info.Size()
			files = append(files, v.Name())
			continue
		}
		if !v.IsDir() || !cacheVersionRE().MatchString(v.Name()) {
			return foreign("%q is not a directory of compiled code (wazero-VERSION-ARCH-OS)", v.Name())
		}
		entries, err := fs.ReadDir(root.FS(), v.Name())
		if err != nil {
			return st, nil, errcode.Errorf(errcode.CacheUnavailable, "compile cache %s: %v", dir, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !cacheEntryRE().MatchString(e.Name()) {
				return foreign("%q is not compiled code (a regular file named by 64 hex digits)", filepath.Join(v.Name(), e.Name()))
			}
			info, err := e.Info()
			if err != nil {
				return st, nil, errcode.Errorf(errcode.CacheUnavailable, "compile cache %s: %v", dir, err)
			}
			st.Entries++
			st.Bytes += info.Size()
			files = append(files, filepath.Join(v.Name(), e.Name()))
		}
		st.Versions = append(st.Versions, v.Name())
	}
	sort.Strings(st.Versions)
	return st, files, nil
}

// defaultCacheHint names the default cache directory for a hint.
func defaultCacheHint() string {
	if d, err := DefaultCacheDir(); err == nil {
		return d
	}
	return "$XDG_CACHE_HOME/ampoule/wazero"
}
