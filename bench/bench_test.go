// Package bench compares Ampoule's runtime with plain wazero in-process. The
// whole-process comparison, with the targets, is 'go run ./bench/cmd/ratios'.
package bench

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/sandbox"
)

// plain runs module the way bench/refrun does, in-process.
func plain(b *testing.B, cache wazero.CompilationCache, module []byte, args ...string) {
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	cfg := wazero.NewModuleConfig().WithStdout(io.Discard).WithStderr(io.Discard).WithArgs(args...).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithRandSource(rand.Reader)
	if _, err := r.InstantiateWithConfig(ctx, module, cfg); err != nil {
		if e, ok := err.(*sys.ExitError); !ok || e.ExitCode() != 0 {
			b.Fatal(err)
		}
	}
}

func ampoule(b *testing.B, cacheDir string, module []byte, args ...string) {
	_, err := sandbox.Run(context.Background(), sandbox.Spec{
		Module: module, Name: args[0], Args: args[1:], Env: map[string]string{},
		MemoryPages: 16384, WallTime: time.Minute, OutputBytes: 1 << 20,
		Stdout: io.Discard, Stderr: io.Discard, CacheDir: cacheDir,
	})
	if err != nil {
		b.Fatal(err)
	}
}

func cacheDir(b *testing.B) string {
	dir, err := os.MkdirTemp("", "ampoule-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// BenchmarkStartWarm: compile from a warm file cache, instantiate, run hello.
func BenchmarkStartWarm(b *testing.B) {
	module := testwasm.Module(b, "hello")
	b.Run("wazero", func(b *testing.B) {
		cache, err := wazero.NewCompilationCacheWithDir(cacheDir(b))
		if err != nil {
			b.Fatal(err)
		}
		plain(b, cache, module, "hello", "tenant") // fill the cache
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			plain(b, cache, module, "hello", "tenant")
		}
	})
	b.Run("ampoule", func(b *testing.B) {
		dir := cacheDir(b)
		ampoule(b, dir, module, "hello", "tenant")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ampoule(b, dir, module, "hello", "tenant")
		}
	})
}

// BenchmarkCompute: SHA-256 of 16 MiB inside the guest, warm cache; reports MB/s.
func BenchmarkCompute(b *testing.B) {
	module := testwasm.Module(b, "compute")
	b.Run("wazero", func(b *testing.B) {
		cache, err := wazero.NewCompilationCacheWithDir(cacheDir(b))
		if err != nil {
			b.Fatal(err)
		}
		plain(b, cache, module, "compute", "16", "1")
		b.SetBytes(16 << 20)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			plain(b, cache, module, "compute", "16", "1")
		}
	})
	b.Run("ampoule", func(b *testing.B) {
		dir := cacheDir(b)
		ampoule(b, dir, module, "compute", "16", "1")
		b.SetBytes(16 << 20)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			ampoule(b, dir, module, "compute", "16", "1")
		}
	})
}
