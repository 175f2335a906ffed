package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
)

// wazero reads its cache entry for a module whole before it trusts it (its
// length and a checksum of the code), but an entry it cannot read fails
// the compile, "compilationcache: ...", instead of compiling afresh; the
// entry stays, so every later run of the module fails the same way. A
// cache on the host's disk (debug's) can be torn so: the host truncates
// or changes a file, or its disk fills. Such an entry is replaced: the
// module is compiled with a fresh cache in a directory of its own inside
// the cache's, and the entry wazero writes there is renamed over the torn
// one. The entry's name is wazero's key for the module, which wazero does
// not expose; the fresh cache is how to learn it.

// cacheReadError says whether err is wazero's failure to read a cache
// entry, rather than the module's own.
func cacheReadError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "compilationcache:")
}

// compileRepairing compiles module with a new runtime of cfg whose cache
// is a fresh directory under dir, moves the entries it makes into dir in
// place of those they are named as, and returns the runtime and its
// compiled module, and the cache, which the caller closes after the
// runtime (closing it releases the compiled code). The cache's directory
// is gone once it returns: wazero reads a cache only to compile, and the
// runtime compiles nothing more that a cache keeps (host modules are never
// cached).
func compileRepairing(ctx context.Context, cfg wazero.RuntimeConfig, dir string, module []byte) (wazero.Runtime, wazero.CompilationCache, wazero.CompiledModule, error) {
	tmp, err := os.MkdirTemp(dir, "repair-")
	if err != nil {
		return nil, nil, nil, err
	}
	defer os.RemoveAll(tmp)
	cache, err := wazero.NewCompilationCacheWithDir(tmp)
	if err != nil {
		return nil, nil, nil, err
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg.WithCompilationCache(cache))
	compiled, err := rt.CompileModule(ctx, module)
	if err != nil {
		rt.Close(context.Background())
		cache.Close(context.Background())
		return nil, nil, nil, err
	}
	// wazero-VERSION-ARCH-OS/KEY, as in dir.
	made, _ := filepath.Glob(filepath.Join(tmp, "wazero-*", "*"))
	for _, f := range made {
		rel, err := filepath.Rel(tmp, f)
		if err != nil || strings.HasSuffix(f, ".tmp") {
			continue
		}
		if os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o700) == nil {
			os.Rename(f, filepath.Join(dir, rel))
		}
	}
	return rt, cache, compiled, nil
}
