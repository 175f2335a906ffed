// Command refrun is the reference for Ampoule's benchmarks: plain wazero doing
// only what wazero's own WASI example does (a runtime, WASI, stdout and
// stderr, argv) plus what wazero's own CLI adds so that the guest sees a real
// system (the file compilation cache, the host's clocks, sleep and random
// source; wazero's defaults are a fake clock and a fixed random seed), so
// that a ratio measures what Ampoule adds and nothing else.
//
//	refrun [-cachedir DIR] [-dir HOST::GUEST] MODULE.wasm [ARGS...]
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

func main() {
	cacheDir := flag.String("cachedir", "", "compilation cache directory (empty: none)")
	dir := flag.String("dir", "", "a directory mount HOST::GUEST, as wazero's CLI mounts it (read-only)")
	interp := flag.Bool("interp", false, "run in wazero's interpreter instead of compiling")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: refrun [-cachedir DIR] [-dir HOST::GUEST] [-interp] MODULE.wasm [ARGS...]")
		os.Exit(2)
	}
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfig()
	if *interp {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	if *cacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(*cacheDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "refrun:", err)
			os.Exit(1)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer r.Close(ctx)
	wasm, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "refrun:", err)
		os.Exit(1)
	}
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	config := wazero.NewModuleConfig().WithStdout(os.Stdout).WithStderr(os.Stderr).WithArgs(flag.Args()...).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().WithRandSource(rand.Reader)
	if *dir != "" {
		host, guest, ok := strings.Cut(*dir, "::")
		if !ok {
			fmt.Fprintln(os.Stderr, "refrun: -dir takes HOST::GUEST")
			os.Exit(2)
		}
		config = config.WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(host, guest))
	}
	if _, err := r.InstantiateWithConfig(ctx, wasm, config); err != nil {
		var exit *sys.ExitError
		if errors.As(err, &exit) {
			r.Close(ctx)
			os.Exit(int(exit.ExitCode()))
		}
		fmt.Fprintln(os.Stderr, "refrun:", err)
		os.Exit(1)
	}
}
