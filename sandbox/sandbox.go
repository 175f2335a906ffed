// Package sandbox runs a WASI preview 1 module in wazero under Ampoule's
// limits. It is the only package that imports wazero.
//
// A run compiles the module (through an optional on-disk compilation cache),
// checks its imports, and runs its _start function with the arguments,
// environment, preopened directories and standard streams it is given. Memory,
// wall time and output are bounded; a limit breach ends the run at once with
// its own registered code. Cancelling the context stops the run within
// milliseconds, even while the workload spins or waits in a host call.
package sandbox

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/shim"
)

// pageSize is the WebAssembly page size.
const pageSize = 64 << 10

// Mount is a host directory preopened in the guest.
type Mount struct {
	// Host is the host directory. It must exist. When Root is set it only
	// names the directory in messages.
	Host string
	// Root, when set, is the directory already opened by the caller, who
	// keeps it open for the run and closes it after; a caller that resolved
	// it beneath a bundle's directory sets it so that nothing opens Host by
	// its path again. When nil, Run and Supervise open Host as they start.
	Root *shim.Root
	// MaxBytes, when above zero, bounds what the guest makes in this mount
	// while the run goes (counted as FileOutputBytes counts it, nothing
	// given back for removals); a breach ends the run with
	// E4007 sealed-size-limit. It is for a mount that lives in memory.
	MaxBytes int64
	// Guest is the absolute path the guest sees.
	Guest    string
	Writable bool
}

// Spec is everything one run needs. The zero value of a limit means none,
// which callers should not want: the loader always supplies defaults.
type Spec struct {
	// Module is the WebAssembly binary.
	Module []byte
	// Name is argv[0].
	Name string
	// Args follow Name in argv.
	Args []string
	// Env is the guest's environment.
	Env  map[string]string
	Dirs []Mount
	// Secrets are files the guest reads at SecretsDir/NAME: read-only,
	// held in memory (never a host file), each name a plain file name.
	// Supervise hands them to the runner over its spec's pipe, never in
	// its arguments, environment or a file. No mount may be at SecretsDir
	// or beneath it.
	Secrets map[string][]byte

	// MemoryPages bounds linear memory, in 64 KiB pages.
	MemoryPages uint32
	// WallTime bounds the run's duration.
	WallTime time.Duration
	// CompileTime bounds compiling the module in a supervised run. Zero
	// means the wall time, but at least 5 s and 2 s per MiB of module.
	CompileTime time.Duration
	// OutputBytes bounds what the guest writes to stdout and stderr together.
	OutputBytes int64
	// OpenFiles bounds the files and directories the guest has open at
	// once, beyond stdio and its preopens.
	OpenFiles int
	// FileOutputBytes bounds what the guest writes into files, in all.
	FileOutputBytes int64
	// HostCalls bounds the number of host calls; zero means no bound.
	HostCalls uint64
	// Trace, if set, receives one line for every host call: its name,
	// arguments and result.
	Trace io.Writer

	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// CacheDir holds compiled code between runs. Empty means compile in memory.
	CacheDir string
	// CacheDirFunc, if set, gives CacheDir in its place, for a caller whose
	// cache directory takes work to find (the authenticated cache hashes
	// the module to name it): Supervise calls it once the runner process
	// has started and before the runner is sent its spec, so that the
	// work overlaps the runner's own start.
	CacheDirFunc func() string
	// ModuleDigest, if set, returns the SHA-384 of Module, which the caller
	// has anyway (it is the measurement's): the module's kept inspection in
	// CacheDir is named by it, so that a run need not hash the module
	// again. Supervise calls it once the runner has been started, so that
	// hashing overlaps the runner's own start, and hands the digest on with
	// the module's sealed copy. Nil: the module is hashed where it is
	// inspected.
	ModuleDigest func() [48]byte
	// Compiled, if set, is called once the module is compiled, with how
	// the compilation cache served it: CacheHit, CacheMiss, CacheOff or
	// CacheInterpreted.
	Compiled func(cache string)
	// InterpretFirst runs a module that no run has compiled into CacheDir
	// (see compiledMark) in wazero's interpreter, which starts
	// in a fraction of a compile, while the module is compiled into
	// CacheDir beside it; runs from then on start from the compiled code.
	// The interpreted run is slower at computing (65 times on a tight
	// integer loop), within the same limits, and holds the interpreter's
	// copy of the module beside the compile until the guest's outcome is
	// decided, so it suits modules whose first run is short. Run returns
	// once the compile has ended (within its own bound, as a compiling
	// run's compile: the wall time, but at least 5 s and 2 s per MiB), or
	// when ctx ends; the outcome is the guest's whichever way the compile
	// ends. Without CacheDir it does nothing.
	InterpretFirst bool
	// Decided, if set, is called where Run goes on once the workload's
	// outcome is decided (an interpreted run whose module still compiles
	// into the cache beside it), with the outcome Run will return, so that
	// a runner can report it without waiting for the compile.
	Decided func(Result, error)

	// Gate decides every host call. Nil means shim.Gate().
	Gate shim.Table

	// Seccomp confines the runner process once the module is compiled. Only
	// Supervise applies it, in the runner: a filter cannot be removed.
	Seccomp shim.SeccompAction

	// Protect starts Supervise's runner with GOTRACEBACK=none as its whole
	// environment, so that not even a runner that panics prints a stack.
	// (A runner is always made not dumpable, with no core file, before it
	// reads its spec: see Protect.)
	Protect bool
	// launcher is childSpec.Launcher, in a runner.
	launcher string

	// Entry, when set, names the function a WASI reactor exports for a run
	// to call, () -> (), after its _initialize (when it exports one), in
	// place of a command's _start; a module that exports _start is then
	// refused, as one without Entry that does not.
	Entry string

	// BeforeStart, if set, is called once the module is compiled and its
	// imports checked, just before its first instruction runs. An error
	// ends the run without running the module.
	BeforeStart func() error

	// Preempt compiles a check into every loop header and function entry, so
	// that a run whose context ends stops even while it spins in pure wasm,
	// and Run returns only once the guest has stopped. It costs up to 4x on
	// tight loops (see BENCHMARKS.md). Without it Run returns as soon as the
	// context ends and parks the guest at its next host call; but Go cannot
	// preempt wazero's compiled code, so a guest spinning without host calls
	// keeps its goroutine and can freeze the whole process at the Go
	// runtime's next stop-the-world. Run untrusted guests without Preempt
	// only in a process of their own: Supervise does that.
	Preempt bool
}

// Result is the outcome of a run that reached the workload.
type Result struct {
	// ExitCode is what the workload passed to proc_exit, or 0 if it returned
	// from _start.
	ExitCode uint32
}

// limitError records which limit ended a run.
type limitError struct{ code errcode.Code }

func (e *limitError) Error() string { return e.code.Text() }

// Run compiles and runs spec.Module. A workload that exits with a non-zero
// code is not an error: see Result. Errors are *errcode.Error.
//
// Once the run's context ends (a limit, or the caller's cancellation) the
// guest's output no longer reaches spec.Stdout or spec.Stderr, and its sleeps
// and stdin reads return at once (Preempt) or never (otherwise).
func Run(ctx context.Context, spec Spec) (Result, error) {
	if err := checkSecrets(spec); err != nil {
		return Result{}, err
	}
	// Each mount is opened once, as the run starts, and used through that
	// descriptor alone (see confinedFS).
	roots := make([]*shim.Root, len(spec.Dirs))
	var owned []*shim.Root
	closeOwned := func() {
		for _, r := range owned {
			r.Close()
		}
	}
	for i, d := range spec.Dirs {
		if d.Root != nil {
			roots[i] = d.Root
			continue
		}
		root, err := shim.OpenRoot(d.Host)
		if err != nil {
			closeOwned()
			return Result{}, errcode.Errorf(errcode.DirInvalid, "mount %s::%s: %v", d.Host, d.Guest, err)
		}
		roots[i], owned = root, append(owned, root)
	}
	// abandoned is set when Run returns while the guest still runs; then
	// nothing it uses may be closed under it. The process exit reclaims it.
	var abandoned bool
	defer func() {
		if !abandoned {
			closeOwned()
		}
	}()

	// The run's own context: cancelled with a cause when a limit is hit.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	cfg := wazero.NewRuntimeConfig().WithCloseOnContextDone(spec.Preempt)
	if spec.CacheDirFunc != nil {
		spec.CacheDir = spec.CacheDirFunc()
	}
	// Both are replaced where a torn cache entry is (compileRepairing).
	var cache wazero.CompilationCache
	var rt wazero.Runtime
	// Closing must not depend on ctx, which may already be cancelled. The
	// runtime goes before the cache, which holds its compiled code.
	defer func() {
		if !abandoned && cache != nil {
			cache.Close(context.Background())
		}
	}()
	if spec.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(spec.CacheDir); err != nil {
			return Result{}, errcode.Errorf(errcode.CacheUnavailable, "compilation cache %s: %v", spec.CacheDir, err)
		}
	}
	compileCfg := cfg
	if cache != nil {
		cfg = cfg.WithCompilationCache(cache)
	}
	rt = wazero.NewRuntimeWithConfig(ctx, cfg)
	defer func() {
		if !abandoned {
			rt.Close(context.Background())
		}
	}()

	// Before wazero decodes it: its decoder sizes allocations from the
	// module's declared counts, and its compile time from its structure.
	if err := checkModuleCached(spec.Module, spec.ModuleDigest, uint64(spec.MemoryPages)*pageSize, spec.CacheDir, spec.launcher); err != nil {
		return Result{}, err
	}
	cached := cacheFiles(spec.CacheDir)
	// filled is closed once the compile into the cache that goes on beside
	// an interpreted run has ended; nil when there is none.
	var filled chan struct{}
	var digest [48]byte
	interpretFirst := spec.InterpretFirst && spec.CacheDir != ""
	if interpretFirst {
		digest = moduleDigest(&spec)
	}
	if interpretFirst && !hasCompiled(spec.CacheDir, digest) {
		filled = make(chan struct{})
		compiler := rt
		go func() {
			defer close(filled)
			// A module wazero cannot compile is refused below, by the
			// interpreter's validation, which is the same.
			c, err := compiler.CompileModule(context.Background(), spec.Module)
			if cacheReadError(err) {
				var crt wazero.Runtime
				var cc wazero.CompilationCache
				if crt, cc, c, err = compileRepairing(context.Background(), compileCfg, spec.CacheDir, spec.Module); err == nil {
					defer cc.Close(context.Background())
					defer crt.Close(context.Background())
				}
			}
			if err == nil {
				markCompiled(spec.CacheDir, digest)
				c.Close(context.Background())
			}
		}()
		// Nothing the compile uses may be closed under it: where Run
		// returns before it has ended, the runtime and the cache are left
		// to the process's exit (a runner's) or to the compile's end.
		defer func() {
			select {
			case <-filled:
				if !abandoned {
					compiler.Close(context.Background())
				}
			default:
				abandoned = true
			}
		}()
		rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCloseOnContextDone(spec.Preempt))
	}
	compiled, err := rt.CompileModule(ctx, spec.Module)
	repaired := false
	if filled == nil && cacheReadError(err) {
		// The cache's entry is torn: compiled afresh, into its place.
		if nrt, ncache, c, rerr := compileRepairing(ctx, compileCfg, spec.CacheDir, spec.Module); rerr == nil {
			rt.Close(context.Background())
			cache.Close(context.Background())
			rt, cache, compiled, err, repaired = nrt, ncache, c, nil, true
		}
	}
	if err != nil {
		return Result{}, errcode.Errorf(errcode.ModuleInvalid, "compiling the module: %v", err)
	}
	served := CacheInterpreted
	if filled == nil {
		served = cacheOutcome(spec.CacheDir, cached)
		if repaired {
			served = CacheMiss
		}
		// Marked on every miss a digest is at hand for (a supervised
		// run's always is), so that a later InterpretFirst run knows the
		// code is there.
		switch {
		case interpretFirst:
			markCompiled(spec.CacheDir, digest)
		case served == CacheMiss && spec.ModuleDigest != nil:
			markCompiled(spec.CacheDir, spec.ModuleDigest())
		}
	}
	if spec.Compiled != nil {
		spec.Compiled(served)
	}
	gate := spec.Gate
	if gate == nil {
		gate = shim.Gate()
	}
	var watch *callWatch
	if spec.HostCalls > 0 || spec.Trace != nil {
		watch = &callWatch{max: spec.HostCalls, trace: spec.Trace, hit: func(c errcode.Code) { cancel(&limitError{c}) }}
	}
	lookup := &linkLookup{}
	wasi, err := gatedWASI(ctx, rt, gate, watch, lookup)
	if err != nil {
		return Result{}, errcode.Errorf(errcode.Internal, "compiling WASI: %v", err)
	}
	if err := checkImports(compiled, wasi, gate); err != nil {
		return Result{}, err
	}
	if err := checkStart(compiled, spec.Entry); err != nil {
		return Result{}, err
	}
	if spec.MemoryPages > 0 {
		for _, m := range compiled.ExportedMemories() {
			if m.Min() > spec.MemoryPages {
				return Result{}, errcode.Errorf(errcode.MemoryLimit, "the module's memory starts at %d pages, above its limit of %d", m.Min(), spec.MemoryPages)
			}
		}
	}
	if _, err := rt.InstantiateModule(ctx, wasi, wazero.NewModuleConfig()); err != nil {
		return Result{}, errcode.Errorf(errcode.Internal, "instantiating WASI: %v", err)
	}

	// The run's context until BeforeStart; from then on the wall-time
	// limit's, which end follows.
	end := &ending{ctx: ctx, park: !spec.Preempt}
	mc := wazero.NewModuleConfig().
		WithName("").
		WithArgs(append([]string{spec.Name}, spec.Args...)...).
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(end.sleep).
		WithRandSource(rand.Reader).
		// The start functions are called below, once BeforeStart allows.
		WithStartFunctions()
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		mc = mc.WithEnv(k, spec.Env[k])
	}
	starts := []string{"_start"}
	if spec.Entry != "" {
		// checkStart saw the module export Entry and no _start.
		starts = []string{spec.Entry}
		if _, ok := compiled.ExportedFunctions()["_initialize"]; ok {
			starts = []string{"_initialize", spec.Entry}
		}
	}
	hit := func(c errcode.Code) { cancel(&limitError{c}) }
	files := &fileLimits{maxOpen: spec.OpenFiles, hit: hit,
		written: budget{max: spec.FileOutputBytes, code: errcode.FileOutputLimit, hit: hit}}
	fsc := wazero.NewFSConfig()
	for i, d := range spec.Dirs {
		var q *quota
		if d.MaxBytes > 0 {
			q = &quota{max: d.MaxBytes, code: errcode.SealedSizeLimit, hit: hit}
		}
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(newConfinedFS(roots[i], d.Writable, files, q, lookup), d.Guest)
	}
	if len(spec.Secrets) > 0 {
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(newSecretFS(spec.Secrets, files), SecretsDir)
	}
	mc = mc.WithFSConfig(fsc)

	out := &outputLimit{end: end, remaining: spec.OutputBytes, hit: func() { cancel(&limitError{errcode.OutputLimit}) }}
	if spec.OutputBytes <= 0 {
		out.remaining = math.MaxInt64
	}
	if spec.Stdout != nil {
		mc = mc.WithStdout(out.wrap(spec.Stdout))
	}
	if spec.Stderr != nil {
		mc = mc.WithStderr(out.wrap(spec.Stderr))
	}
	if spec.Stdin != nil {
		mc = mc.WithStdin(newStdin(end, spec.Stdin))
	}
	// The allocator is the instance's from its instantiation on. Its
	// memory is unmapped once the guest has returned (the module closed
	// first: defers run last first), never under an abandoned one.
	var alloc *allocator
	if spec.MemoryPages > 0 {
		alloc = &allocator{limit: uint64(spec.MemoryPages) * pageSize, hit: func() { cancel(&limitError{errcode.MemoryLimit}) }}
		defer func() {
			if !abandoned {
				alloc.release()
			}
		}()
	}
	withAllocator := func(ctx context.Context) context.Context {
		if alloc == nil {
			return ctx
		}
		return experimental.WithMemoryAllocator(ctx, alloc)
	}

	// Instantiating (memory, data segments, tables, globals) runs none of
	// the module's code unless it has a start section: then it is done
	// before BeforeStart, where a runner waits to be told to start, so that
	// a run it serves pays only for the module's own start.
	var early api.Module
	if !hasStartSection(spec.Module) {
		m, err := rt.InstantiateModule(withAllocator(ctx), compiled, mc)
		if err != nil {
			return outcome(ctx, err, &spec)
		}
		early = m
		defer func() {
			if !abandoned && early != nil {
				early.Close(context.Background())
			}
		}()
	}

	if spec.BeforeStart != nil {
		if err := spec.BeforeStart(); err != nil {
			return Result{}, err
		}
	}

	// The wall-time limit covers the workload, not its compilation, nor
	// the compile that goes on beside an interpreted run once it has ended.
	runCtx := ctx
	if spec.WallTime > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, spec.WallTime, &limitError{errcode.WallTimeLimit})
		defer stop()
	}
	// Nothing of the guest has run yet: none of its calls reads end.
	end.ctx = ctx

	done := make(chan error, 1)
	go func() {
		mod := early
		if mod == nil {
			m, err := rt.InstantiateModule(withAllocator(ctx), compiled, mc)
			if err != nil {
				done <- err
				return
			}
			mod = m
		}
		done <- callStarts(ctx, mod, starts)
	}()
	var runErr error
	select {
	case runErr = <-done:
	case <-ctx.Done():
		if spec.Preempt {
			runErr = <-done // wazero closes the module at its next check
		} else {
			abandoned = true
			return outcome(ctx, nil, &spec)
		}
	}
	res, err := outcome(ctx, runErr, &spec)
	if filled != nil {
		// The run's outcome is decided; its process waits for the cache to
		// be filled, within the compile's own bound, so that the next run
		// starts from compiled code. The interpreter's module is let go
		// first, and collected at once rather than when the compile's
		// allocations next double the heap: for the rest of the compile the
		// runner holds what a compiling run does (TestInterpretFirstResident).
		rt.Close(context.Background())
		// What the closures would keep alive (its instance, its compiled
		// module) is let go too.
		early, compiled = nil, nil
		if spec.Decided != nil {
			spec.Decided(res, err)
		}
		goruntime.GC()
		var bound <-chan time.Time
		if d := compileBound(spec); d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			bound = t.C
		}
		select {
		case <-filled:
		case <-runCtx.Done():
		case <-bound:
		}
	}
	return res, err
}

// callStarts calls the module's start functions in order, as wazero's
// InstantiateModule calls those a module config names: the first that
// fails ends it, the module is closed, and an exit with status 0 is no
// error. The module is closed in every case.
func callStarts(ctx context.Context, mod api.Module, starts []string) error {
	defer mod.Close(context.Background())
	for _, name := range starts {
		fn := mod.ExportedFunction(name)
		if fn == nil {
			continue
		}
		if _, err := fn.Call(ctx); err != nil {
			if se, ok := err.(*sys.ExitError); ok {
				if se.ExitCode() == 0 {
					return nil
				}
				return err
			}
			return fmt.Errorf("module[%s] function[%s] failed: %w", mod.Name(), name, err)
		}
	}
	return nil
}

// checkSecrets refuses secrets no guest could read as named, and a mount
// where they are.
func checkSecrets(spec Spec) error {
	if len(spec.Secrets) == 0 {
		return nil
	}
	for name := range spec.Secrets {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
			return errcode.Errorf(errcode.Internal, "a secret's name %q is not a file name", name)
		}
	}
	for _, d := range spec.Dirs {
		if d.Guest == SecretsDir || strings.HasPrefix(d.Guest, SecretsDir+"/") {
			return errcode.Errorf(errcode.DirInvalid, "mount %s::%s: the secrets are read at %s; no mount may be there", d.Host, d.Guest, SecretsDir).WithHint("mount the directory elsewhere")
		}
	}
	return nil
}

// outcome maps what InstantiateModule returned to a Result or a coded error.
// A limit or an interruption takes precedence over what the guest did after it.
func outcome(ctx context.Context, err error, spec *Spec) (Result, error) {
	if ctx.Err() != nil {
		var le *limitError
		if cause := context.Cause(ctx); errors.As(cause, &le) {
			return Result{}, errcode.Errorf(le.code, "%s", limitDetail(le.code, spec))
		}
		return Result{}, errcode.Errorf(errcode.Interrupted, "the run was stopped: %v", context.Cause(ctx))
	}
	if err == nil {
		return Result{}, nil
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return Result{ExitCode: exit.ExitCode()}, nil
	}
	var gateErr *errcode.Error // a host function of the gate ended the run
	if errors.As(err, &gateErr) {
		return Result{}, errcode.Errorf(gateErr.Code, "%v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "import") && strings.Contains(msg, "signature mismatch") {
		return Result{}, errcode.Errorf(errcode.ModuleImportDenied, "%v", err).
			WithHint("the module imports a WASI function with the wrong signature; rebuild it for WASI preview 1")
	}
	return Result{}, errcode.Errorf(errcode.WorkloadTrap, "%v", err)
}

// limitDetail says which limit ended a run and its value, as the manifest
// sets it: "memory limit 64 MiB reached". (Under static profiles the host
// sees only the code; the detail goes to the tenant's log.)
func limitDetail(c errcode.Code, s *Spec) string {
	var what, value string
	switch c {
	case errcode.MemoryLimit:
		what, value = "memory limit", sizeText(int64(s.MemoryPages)*pageSize)
	case errcode.WallTimeLimit:
		what, value = "wall-time limit", s.WallTime.String()
	case errcode.OutputLimit:
		what, value = "output limit", sizeText(s.OutputBytes)
	case errcode.OpenFilesLimit:
		what, value = "open-files limit", strconv.Itoa(s.OpenFiles)
	case errcode.FileOutputLimit:
		what, value = "file-output limit", sizeText(s.FileOutputBytes)
	case errcode.HostCallLimit:
		what, value = "host-call limit", strconv.FormatUint(s.HostCalls, 10)
	case errcode.SealedSizeLimit:
		for _, d := range s.Dirs {
			if d.MaxBytes > 0 {
				what, value = "sealed mount's limit", sizeText(d.MaxBytes)
			}
		}
	}
	if what == "" {
		return c.Text()
	}
	return fmt.Sprintf("%s %s reached: %s", what, value, c.Text())
}

// sizeText writes n bytes in the largest binary unit that divides it, as
// a manifest would write it: 64 MiB, 1536 KiB, 1000 bytes.
func sizeText(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// checkImports refuses a module that imports anything but the WASI functions
// its gate exports: another module, an unknown or refused function, a wrong
// signature, or a memory from anywhere.
func checkImports(m, wasi wazero.CompiledModule, gate shim.Table) error {
	provided := wasi.ExportedFunctions()
	for _, f := range m.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == shim.AmpouleModule {
			why := "it is not an ampoule host function"
			if rule, ok := shim.AmpouleFunctions()[name]; ok {
				why = rule.Why
			}
			return errcode.Errorf(errcode.ModuleImportDenied, "the module imports %s.%s, which the gate refuses: %s", mod, name, why)
		}
		if mod != shim.WASIModule {
			return errcode.Errorf(errcode.ModuleImportDenied, "the module imports %s.%s; only %s functions are provided", mod, name, shim.WASIModule)
		}
		rule, inTable := gate[name]
		want, ok := provided[name]
		if !ok || !inTable {
			return errcode.Errorf(errcode.ModuleImportDenied, "the module imports %s.%s, which is not a %s function", mod, name, shim.WASIModule)
		}
		if rule.Action == shim.Refuse {
			return errcode.Errorf(errcode.ModuleImportDenied, "the module imports %s.%s, which the gate refuses: %s", mod, name, rule.Why)
		}
		if !sameSignature(f, want) {
			return errcode.Errorf(errcode.ModuleImportDenied, "the module imports %s.%s with signature %s, but it is %s", mod, name, signature(f), signature(want))
		}
	}
	for _, mem := range m.ImportedMemories() {
		mod, name, _ := mem.Import()
		return errcode.Errorf(errcode.ModuleImportDenied, "the module imports memory %s.%s; a module must define its own memory", mod, name)
	}
	return nil
}

// checkStart refuses a module with nothing to run: wazero would
// instantiate it, run nothing and report success. A command exports
// _start () -> (); a reactor, run with an entry, exports the entry
// () -> () and no _start.
func checkStart(m wazero.CompiledModule, entry string) error {
	fns := m.ExportedFunctions()
	start, hasStart := fns["_start"]
	if entry != "" {
		f, ok := fns[entry]
		switch {
		case hasStart:
			return errcode.Errorf(errcode.ModuleNoStart, "the manifest names the entry %q, and the module exports _start: it is a WASI command, which runs from _start", entry).
				WithHint("remove entry from ampoule.toml: entry is for a reactor (a module exporting _initialize and no _start)")
		case !ok:
			return errcode.Errorf(errcode.ModuleNoStart, "the manifest names the entry %q, which the module does not export", entry).
				WithHint("name a function the module exports, () -> ()")
		case signature(f) != "()->()":
			return errcode.Errorf(errcode.ModuleNoStart, "the entry %q has signature %s, not ()->()", entry, signature(f))
		}
		return nil
	}
	switch {
	case !hasStart && fns["_initialize"] != nil:
		return errcode.Errorf(errcode.ModuleNoStart, "the module exports _initialize and no _start: it is a WASI reactor, which has no entry point to run").
			WithHint("name the function to run after _initialize in ampoule.toml: entry = \"NAME\" (() -> ()), or build the module as a WASI command")
	case !hasStart:
		return errcode.Errorf(errcode.ModuleNoStart, "the module exports no _start function, so it has nothing to run")
	case signature(start) != "()->()":
		return errcode.Errorf(errcode.ModuleNoStart, "the module's _start has signature %s, not ()->()", signature(start))
	}
	return nil
}

func sameSignature(a, b api.FunctionDefinition) bool {
	return signature(a) == signature(b)
}

func signature(f api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ",")
	}
	return fmt.Sprintf("(%s)->(%s)", names(f.ParamTypes()), names(f.ResultTypes()))
}

// ending decides what the guest's blocking host calls do once its run has
// ended: return at once (so a preemptible guest reaches wazero's next check)
// or park forever (so an abandoned guest neither spins nor has any effect).
type ending struct {
	ctx  context.Context
	park bool
}

// over reports whether the run has ended, parking the caller if it must.
func (e *ending) over() bool {
	if e.ctx.Err() == nil {
		return false
	}
	if e.park {
		select {}
	}
	return true
}

// sleep sleeps like the system clock but wakes when the run ends, so that a
// workload sleeping in poll_oneoff stops with its run.
func (e *ending) sleep(ns int64) {
	if e.over() || ns <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-e.ctx.Done():
		e.over()
	}
}

// VersionInfo names the versions that make up a launcher binary. Launch is
// the main module's version ("(devel)" when built from a checkout), Commit
// the revision it was built from and Modified whether its tree had changes
// (both from the go command's VCS stamp; Commit is "" without one).
type VersionInfo struct {
	Launch   string `json:"launch"`
	Commit   string `json:"commit"`
	Modified bool   `json:"modified"`
	Wazero   string `json:"wazero"`
	Go       string `json:"go"`
}

// WriteText writes the versions for a person, a line each: launch's, the
// commit it was built from (marked +modified for a tree with changes),
// wazero's and Go's.
func (v VersionInfo) WriteText(w io.Writer) {
	fmt.Fprintf(w, "launch %s\n", v.Launch)
	if v.Commit != "" {
		mod := ""
		if v.Modified {
			mod = "+modified"
		}
		fmt.Fprintf(w, "commit %s%s\n", v.Commit, mod)
	}
	fmt.Fprintf(w, "wazero %s\n%s\n", v.Wazero, v.Go)
}

// Versions reads the versions from the binary's build information.
func Versions() VersionInfo {
	bi, ok := debug.ReadBuildInfo()
	return versionsFrom(bi, ok)
}

// versionsFrom reads the versions from build information, if there is any.
func versionsFrom(bi *debug.BuildInfo, ok bool) VersionInfo {
	v := VersionInfo{Launch: "(devel)", Wazero: "unknown", Go: goruntime.Version()}
	if !ok || bi == nil {
		return v
	}
	if bi.Main.Version != "" {
		v.Launch = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/tetratelabs/wazero" {
			v.Wazero = d.Version
		}
	}
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			v.Commit = kv.Value
		case "vcs.modified":
			v.Modified = kv.Value == "true"
		}
	}
	return v
}

// How a compilation cache served a run's module (Spec.Compiled).
const (
	// CacheHit: the compiled code was in the cache.
	CacheHit = "hit"
	// CacheMiss: the module was compiled and its code written to the cache.
	CacheMiss = "miss"
	// CacheInterpreted: the cache had no code for the module, which ran
	// in wazero's interpreter while it was compiled into the cache
	// (Spec.InterpretFirst).
	CacheInterpreted = "interpreted"
	// CacheOff: the run has no on-disk cache; the module was compiled in
	// memory.
	CacheOff = "off"
)

// cacheFiles counts the files in the compilation cache at dir, -1 without
// one. wazero writes a file for each module it compiles and none for one
// it finds, so a count that grew across a compile is a miss.
func cacheFiles(dir string) int {
	if dir == "" {
		return -1
	}
	n := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// cacheOutcome says how the cache at dir served a compile that began with
// before files in it. A run beside another writing the same cache may see
// the other's file as its own miss: the outcome is for a developer's eyes,
// never a decision.
func cacheOutcome(dir string, before int) string {
	switch {
	case before < 0:
		return CacheOff
	case cacheFiles(dir) > before:
		return CacheMiss
	}
	return CacheHit
}
