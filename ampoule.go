package ampoule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/shim"
	"github.com/ampoule-run/ampoule/shim/audit"
	"github.com/ampoule-run/ampoule/tee"
)

// Config is one run's settings. The zero value of every field but Profile
// is a sane default; Profile must be set.
type Config struct {
	// Profile is the profile's name: "debug", "staging" or "production".
	Profile string
	// Backend is the TEE backend asked for: tee.Auto, tee.KindSim,
	// tee.KindSNP ("snp" too) or tee.KindTDX; "" is the profile's
	// DefaultBackend (the simulator under debug, tee.Auto elsewhere). Auto
	// falls back to the simulator only where the profile allows it.
	Backend string
	// SimKey is the simulator's key file; "" is DefaultSimKey().
	SimKey string
	// TEE, when set, is the backend to use, already open (an embedder's
	// own device, a test's fake): Backend and the platform probe are then
	// not consulted, but the profile must allow TEE.Name().
	TEE tee.Backend
	// Platform, when set, stands for what tee.Probe finds on this machine.
	Platform *tee.Platform
	// InitData, when set, is the init-data document the run's VM was
	// launched with (package vm/initdata). The run refuses a bundle and
	// profile it does not name (E3022), and a TEE whose report does not
	// carry its digest as HOST_DATA or MRCONFIGID (E3021), before the
	// workload starts; its evidence carries the document. The simulator
	// has no such field: a run there says the document is not bound.
	InitData []byte

	// Host overrides, added to the measured manifest: refused (E3003) by
	// every profile without AllowHostOverrides. Args follow the manifest's
	// arguments; Env adds to its environment; Dirs are preopened (a
	// relative host path is the working directory's); TraceCalls writes
	// every host call to Stderr; Audit counts the runner's system calls
	// with eBPF into Result.Audit (root only; without it, a warning).
	Args       []string
	Env        map[string]string
	Dirs       []loader.Mount
	TraceCalls bool
	Audit      bool

	// CacheDir keeps compiled code between runs on the host's disk; ""
	// is the user's cache directory. Under debug it is wazero's own
	// cache; under staging and production it is the disk tier of the
	// authenticated cache (package codecache), whose entries are used
	// only once their MAC, under a key the TEE derives for the
	// measurement, verifies. NoCache compiles in memory.
	CacheDir string
	NoCache  bool
	// CodeMemory is the authenticated cache's memory tier: a directory on
	// tmpfs that only root reaches, in a root-owned or sticky directory;
	// "" is /dev/shm/ampoule-code-UID. An embedder running one launcher
	// per VM image, or a test standing for a new VM, gives its own.
	CodeMemory string
	// MeasuredCode is a directory of code compiled ahead of the run for
	// this module (sandbox.Precompile's, as 'launch vm build' carries it
	// in a VM's initramfs) that is part of the image the TEE measured: a
	// tenant who checks the launch measurement has checked this code as
	// much as the launcher executing it. The run gives it to wazero as its
	// cache under every profile, in place of CacheDir and the
	// authenticated cache; a directory not in memory (tmpfs, ramfs), or
	// that anyone but root may change, is refused (E5002). Never a
	// directory of the host's disk: that is what CacheDir is for.
	MeasuredCode string
	// Confine confines the runner with seccomp (EPERM) under a profile
	// that does not always do so.
	Confine bool
	// InterpretFirst runs a module its compilation cache has not seen in
	// wazero's interpreter, while it is compiled into the cache beside
	// the run (sandbox.Spec.InterpretFirst): a first run's output comes in
	// about a tenth of a compile, and later runs start from compiled code.
	// An interpreted run computes far slower within the same limits (65
	// times on a tight integer loop) and holds the interpreter's copy of
	// the module beside the compile, so it is for modules whose first run
	// is short. It does
	// nothing where the run has no cache (NoCache, or staging and
	// production without the authenticated cache).
	InterpretFirst bool

	// Stdin is the workload's stdin where the manifest (stdin = "host")
	// or, without that key, the profile (debug) lets it read the host's;
	// nil is empty. Stdout and Stderr take the workload's output where the
	// profile shows it to the host (debug); nil discards it.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Warnings takes the fixed, host-visible warnings (the simulator's
	// insecurity, a withheld output, a debuggable TEE); nil discards them
	// (Result.Insecure still says a run had no TEE). A run with an
	// encrypted log records each of them there too, as a runtime warning,
	// those given before the log opened first: a tenant reading the log
	// learns what the host was told.
	Warnings io.Writer
	// LogSink opens where the encrypted log goes under a profile whose
	// logs are not plain, once the run has a log to write; it is closed
	// when the log is. Nil, with a log recipient in the manifest, is
	// refused (E1021); an error it returns ends the run with its own
	// code, if it carries one (errcode), else E1021.
	LogSink func() (io.WriteCloser, error)
	// LogLevel is the runtime's own log level: into the encrypted log
	// (hclog.Info if unset), or to Stderr under debug (hclog.Warn if unset). LogJSON writes its
	// records as JSON.
	LogLevel hclog.Level
	LogJSON  bool

	// SealedStore is the encrypted store of the manifest's [sealed] mount;
	// "" is DefaultSealedFile. Set without a [sealed] mount it is refused.
	SealedStore string
	// SealedHandOn is a hand-on (launch sealed sign's file): the consent,
	// signed by the hand_on_key an earlier version's store records, that
	// this run's measurement takes that store over, which under key =
	// "tee" staging and production need for a store accept_from names.
	// Nil is none. Set where the manifest accepts no TEE-sealed store, it
	// is refused.
	SealedHandOn []byte

	// Runner is the executable started as the run's runner (it must call
	// RunnerMain); "" is this program's own.
	Runner string
	// Ref is the run's correlation id; "" is a fresh one (NewRef).
	Ref string
	// Compiling, if set, is called as the runner starts to compile the
	// module, with the module's file name and size; the function it
	// returns, if not nil, is called once, when the module is compiled or
	// the run ends before that. A launcher shows a compile's progress with
	// it. Whether the compilation cache served the module (hit, miss or
	// off) goes to the runtime's log at hclog.Info.
	Compiling func(module string, size int) (done func())
	// BeforeStart, if set, is called once the run is measured and
	// attested, before the workload's first instruction, with the
	// runner's pid.
	BeforeStart func(pid int)

	// server is the Server whose Run this is, if any: it may hand the
	// run a warm runner.
	server *Server
}

// Result is what a run ended with.
type Result struct {
	// ExitCode is the workload's exit code.
	ExitCode uint32
	// Ref is the run's correlation id, the one in its log and its errors.
	Ref string
	// Profile is the profile the run was measured and ran under.
	Profile profiles.Profile
	// Backend is the backend's kind; Insecure is true on the simulator.
	Backend  string
	Insecure bool
	// Measurement is the bundle's under the profile (zero if the run ended
	// before the bundle was read).
	Measurement loader.Measurement
	// Envelope is the run's evidence, if it attested.
	Envelope *tee.Envelope
	// Audit is the runner's system calls, with Config.Audit.
	Audit []audit.Count
	// Also holds failures beside the run's own (the sealed mount not
	// sealed back after a failed run), in the same form as Run's error.
	Also []error
}

// WriteAudit prints the runner's system calls (Audit, with Config.Audit)
// to w, each row naming the allowlist's rule for it, and writes them as
// JSON to jsonFile if one is named ('launch audit --suggest' reads it). A
// failure to write the file is a warning line: the run itself is over.
// A run without an audit writes nothing.
func (r Result) WriteAudit(w io.Writer, jsonFile string) {
	if r.Audit == nil {
		return
	}
	audit.WriteCounts(w, "launch: audit:", r.Audit, shim.AllowedCalls())
	if jsonFile != "" {
		if err := audit.WriteReportFile(jsonFile, r.Audit); err != nil {
			fmt.Fprintf(w, "launch: warning: writing %s: %v\n", jsonFile, err)
		}
	}
}

// Run measures the bundle at path (a directory, a .tar, or under debug a
// bare .wasm) under cfg.Profile and runs it. A workload that exits non-zero
// is an error (E2002) where the profile does not pass exit codes through;
// under debug it is Result.ExitCode. Under a profile with static errors
// the error names only its code and the run's ref, unless it is about the
// host's own input (errcode.IsHost).
func Run(ctx context.Context, path string, cfg Config) (Result, error) {
	p, err := profiles.Get(cfg.Profile)
	if err != nil {
		return Result{}, err
	}
	r := newRun(p, cfg)
	res, err := r.run(ctx, path)
	res.Ref, res.Profile = r.ref, p
	for i, e := range r.also {
		r.also[i] = r.hide(e)
	}
	res.Also = r.also
	return res, r.hide(err)
}

// hide takes the detail out of err under a profile with static errors:
// what remains is its code and the run's ref. The detail has gone into the
// run's log, if it had one. An error about the host's own input
// (errcode.IsHost: its flags, paths, sockets and machine, never anything
// of the bundle, manifest, module or workload) keeps its detail and hint,
// which tell the host nothing it did not give.
func (r *run) hide(err error) error {
	if err == nil || !r.profile.StaticErrors {
		return err
	}
	if errcode.IsHost(err) {
		// The marked error alone: text a wrapper added is not the host's.
		return errcode.From(err)
	}
	c := errcode.From(err).Code
	return errcode.Errorf(c, "%s (ref %s)", c, r.ref)
}

// NewRef returns a fresh correlation id: 16 hex digits.
func NewRef() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "0000000000000000"
	}
	return hex.EncodeToString(b[:])
}

// RunnerMain runs the calling process as a run's runner, and exits, when
// it was started as one (its first argument is the hidden runner
// argument); otherwise it returns at once. Call it first thing in main of
// every program that calls Run.
func RunnerMain() {
	if len(os.Args) > 1 && os.Args[1] == sandbox.RunnerArg {
		os.Exit(sandbox.RunChild())
	}
}

// warnings is where the run's fixed warnings go.
func (c Config) warnings() io.Writer {
	return orDiscard(c.Warnings)
}

// warn writes one fixed warning line, and records it in the tenant's log:
// at once while the log is open, or once it opens.
func (r *run) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(r.cfg.warnings(), "launch: warning: %s\n", msg)
	r.warnMu.Lock()
	defer r.warnMu.Unlock()
	if r.tenantLog != nil {
		r.tenantLog.Warn(msg)
		return
	}
	r.warned = append(r.warned, msg)
}

// logWarnings points the run's warnings at the tenant's log l (nil: none
// from now on), recording there those given before it opened.
func (r *run) logWarnings(l hclog.Logger) {
	r.warnMu.Lock()
	defer r.warnMu.Unlock()
	if l != nil {
		for _, w := range r.warned {
			l.Warn(w)
		}
	}
	r.warned, r.tenantLog = nil, l
}
