package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
)

// The fixed warnings, as the host sees them.
var (
	withheldWarning = warningLine(ampoule.WarningWithheld)
	simWarning      = warningLine(ampoule.WarningSim)
	teeDebugWarning = warningLine(ampoule.WarningTEEDebug)
)

func warningLine(w string) string { return "launch: warning: " + w + "\n" }

func runCommand() command {
	return command{
		name:    "run",
		summary: "measure a bundle and run it",
		usage:   "run [--profile P] [--backend B] [--dir HOST[::GUEST[::rw]]]... [--env K=V|NAME]... BUNDLE|MODULE.wasm [-- ARGS...]",
		help: `
Run measures the bundle (a directory or a .tar holding ampoule.toml and the
module) under the profile, then runs the module in wazero with the manifest's
arguments, environment, directories and limits.

A bare .wasm runs only under the debug profile, with a generated manifest.
--dir, --env and ARGS add to the manifest and are refused by every profile
but debug: staging and production run the measured manifest as it is.

Under debug the workload's output reaches the terminal and its exit code
becomes launch's. Under staging and production the host sees only a static
error code and a correlation id, and launch exits with one of a few fixed
statuses (see 'launch errors').
Everything else goes to the tenant's encrypted log (--log-out, stderr by
default); with the log on stderr, stderr carries the log alone and launch's
own lines (its warnings, the static line) go to stdout. A terminal is
refused as the log's stream (E1029): pass --log-out FILE.

The workload reads launch's stdin where the manifest says stdin = "host";
where it does not say, under debug only. Otherwise its stdin is empty.

A manifest's [sealed] mount is kept on the host's disk as one store
encrypted under a sealing key for the measurement (--sealed FILE, by
default in $XDG_STATE_HOME/ampoule/sealed), opened before the run and
sealed back after it; the directory of --sealed FILE must exist. The key
is the TEE's, or with key = "broker" the one the manifest's [broker]
releases to the run's verified evidence.

Examples:
  launch run wasm-examples/hello
  launch run --dir ./data::/data::rw wasm-examples/files
  launch run --env NAME=dev tool.wasm -- --verbose input.txt
  launch run --dir ./data --env HOME tool.wasm    # ./data is /data in the guest; HOME is launch's
  launch run --sealed ./notes.sealed wasm-examples/notebook -- a note`,
		run: doRun,
	}
}

type runFlags struct {
	profile, backend, cacheDir string
	noCache, verbose, trace    bool
	confine, audit, logJSON    bool
	auditJSON, logOut, simKey  string
	sealed, server             string
	force                      bool
	dirs, env                  stringList
}

func doRun(ctx context.Context, e *cliEnv, args []string) (status int) {
	c := runCommand()
	var f runFlags
	fs := e.newFlagSet(c)
	f.define(fs)
	pos, guestArgs, err := e.parse(c, fs, args)
	if err == errHelp {
		return 0
	}
	if err != nil {
		return e.fail(err)
	}
	if len(pos) != 1 {
		hint := "usage: launch " + c.usage
		if len(pos) > 1 {
			hint = fmt.Sprintf("the workload's arguments go after --: launch run [flags] %s -- %s", pos[0], strings.Join(pos[1:], " "))
		}
		return e.fail(errcode.Errorf(errcode.Usage, "run takes one BUNDLE, got %d arguments", len(pos)).WithHint(hint))
	}
	profile, err := profiles.Get(f.profile)
	if err != nil {
		return e.fail(err)
	}
	host := newHostLines(e.stdout, e.stderr, !profile.PlainLogs && toStderr(f.logOut))
	cfg, err := e.runConfig(f, guestArgs, host)
	if err != nil {
		return e.fail(err)
	}
	out := &outcome{host: host, profile: profile, ref: cfg.Ref}
	// A run that does not unwind in time after a signal still shows the
	// host its line and exits 130 (main).
	defer atExit(func() {
		out.show(errcode.Errorf(errcode.Interrupted, "the run was stopped and did not unwind in time"))
	})()
	if profile.Protected && e.protect != nil {
		if err := e.protect(); err != nil {
			return out.finish(ampoule.Result{}, err)
		}
		// A panic here shows the host the static line, not its value.
		defer func() {
			if v := recover(); v != nil {
				status = out.finish(ampoule.Result{}, errcode.Errorf(errcode.Internal, "panic: %v", v))
			}
		}()
	}
	var res ampoule.Result
	if f.server != "" {
		res, err = ampoule.RunRemote(ctx, f.server, pos[0], cfg)
	} else {
		res, err = ampoule.Run(ctx, pos[0], cfg)
	}
	if f.audit && res.Audit != nil {
		reportAudit(e.stderr, res.Audit, f.auditJSON)
	}
	return out.finish(res, err)
}

// define declares run's flags on fs.
func (f *runFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&f.profile, "profile", "debug", "the profile: debug, staging or production")
	fs.StringVar(&f.backend, "backend", "", "the TEE backend: auto, sim, snp or tdx (default: sim under debug, auto otherwise; auto never falls back to sim under production)")
	fs.Var(&f.dirs, "dir", "preopen a host directory: HOST::GUEST (read-only), HOST::GUEST::rw, or HOST alone at the same path in the guest, read-only (debug only; repeatable)")
	fs.Var(&f.env, "env", "set a workload environment variable K=V, or NAME to pass on launch's own (debug only; repeatable)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "keep compiled code in this directory (default: the user's cache dir; debug only)")
	fs.BoolVar(&f.noCache, "no-cache", false, "compile in memory, with no on-disk cache")
	fs.BoolVar(&f.verbose, "v", false, "log what runs and its measurement (to stderr under debug, to the tenant's log otherwise)")
	fs.BoolVar(&f.logJSON, "log-json", false, "write the runtime's own log records as JSON rather than text")
	fs.BoolVar(&f.trace, "trace-calls", false, "print every host call, its arguments and its result to stderr (debug only)")
	fs.BoolVar(&f.confine, "confine", false, "confine the runner with seccomp (EPERM) under debug too; staging and production always do")
	fs.StringVar(&f.simKey, "sim-key", "", "the simulator's key file, for a run's evidence (default: the user's config dir)")
	fs.StringVar(&f.sealed, "sealed", "", "the encrypted store of the manifest's [sealed] mount (default: $XDG_STATE_HOME/ampoule/sealed/NAME.PROFILE.sealed)")
	fs.StringVar(&f.logOut, "log-out", "-", "where the encrypted log goes under staging and production: a new file (an existing one is refused), unix:SOCKET, or - for stderr (launch's own lines then go to stdout)")
	fs.BoolVar(&f.force, "force", false, "let --log-out replace an existing file")
	fs.BoolVar(&f.audit, "audit", false, "count the runner's system calls with eBPF and print them at exit (debug only; needs root)")
	fs.StringVar(&f.server, "server", "", "send the run to 'launch serve' at unix:PATH, which runs it with a warm runner; what the host sees is what 'launch run' shows")
	fs.StringVar(&f.auditJSON, "audit-json", "", "with --audit, also write the counts as JSON to this file, for 'launch audit --suggest'")
}

// runConfig turns run's flags into the library's settings; the run's own
// lines for the host go to host.
func (e *cliEnv) runConfig(f runFlags, guestArgs []string, host *hostLines) (ampoule.Config, error) {
	cfg := ampoule.Config{
		Profile: f.profile, Backend: f.backend, SimKey: f.simKey, Platform: e.platform, TEE: e.tee,
		Args: guestArgs, TraceCalls: f.trace, Audit: f.audit,
		CacheDir: f.cacheDir, NoCache: f.noCache, Confine: f.confine,
		Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr, Warnings: host,
		LogJSON: f.logJSON, SealedStore: f.sealed, Runner: e.runner, Ref: newCorrelationID(),
		LogSink: func() (io.WriteCloser, error) { return host.sink(f.logOut, f.force) },
		// The log is open by now, if the run has one.
		BeforeStart: func(int) { host.settle() },
	}
	if f.auditJSON != "" && !f.audit {
		return cfg, errcode.Errorf(errcode.Usage, "--audit-json needs --audit")
	}
	if f.verbose {
		cfg.LogLevel = hclog.Info
	}
	if len(f.env) > 0 {
		cfg.Env = map[string]string{}
	}
	for _, kv := range f.env {
		k, v, err := envFlag(kv)
		if err != nil {
			return cfg, err
		}
		cfg.Env[k] = v
	}
	for _, s := range f.dirs {
		d, err := dirFlag(s)
		if err != nil {
			return cfg, err
		}
		cfg.Dirs = append(cfg.Dirs, d)
	}
	return cfg, nil
}

// envFlag reads one --env: K=V, or NAME alone for the value NAME has in
// launch's own environment (which must have it). Either is a host
// override, refused outside debug.
func envFlag(kv string) (string, string, error) {
	k, v, ok := strings.Cut(kv, "=")
	if k == "" {
		return "", "", errcode.Errorf(errcode.Usage, "--env %q is not K=V or NAME", kv)
	}
	if !ok {
		if v, ok = os.LookupEnv(k); !ok {
			return "", "", errcode.Errorf(errcode.Usage, "--env %s: %s is not set in launch's environment", k, k).
				WithHint("--env NAME passes on launch's own NAME; write --env NAME=VALUE to set it")
		}
	}
	return k, v, nil
}

// dirFlag reads one --dir: HOST::GUEST[::rw], or HOST alone, preopened
// read-only at the same path in the guest (a relative HOST beneath the
// guest's root: --dir data is /data, --dir . is /).
func dirFlag(s string) (loader.Mount, error) {
	if s != "" && !strings.Contains(s, "::") {
		guest := filepath.ToSlash(filepath.Clean(s))
		if guest == ".." || strings.HasPrefix(guest, "../") {
			return loader.Mount{}, errcode.Errorf(errcode.DirInvalid, "--dir %q: a directory above the working one has no path of its own in the guest", s).
				WithHint("name its guest path: --dir HOST::GUEST, such as --dir ../data::/data")
		}
		s += "::" + path.Clean("/"+guest)
	}
	d, err := loader.ParseMount(s)
	if err != nil {
		return loader.Mount{}, errcode.Errorf(errcode.DirInvalid, "--dir: %v", err)
	}
	return d, nil
}

// outcome shows a run's end to the host the way its profile allows, once:
// the run's own end and a forced exit (doRun) may both try.
type outcome struct {
	host    *hostLines
	profile profiles.Profile
	ref     string
	shown   sync.Once
}

// finish shows the run's failures and returns the exit status: the
// workload's own under a profile that passes it, else the error's class.
func (o *outcome) finish(res ampoule.Result, err error) int {
	// Lines still held (a run that started no workload) are shown.
	o.host.settle()
	if err != nil {
		// A second failure (the sealed mount not sealed after a failed
		// run) is shown too; the exit status is the run's.
		o.show(append(res.Also, err)...)
		return errcode.From(err).Code.Class().ExitStatus()
	}
	if res.ExitCode > 255 {
		// An exit status is one byte; a larger code must not wrap to success.
		return 255
	}
	return int(res.ExitCode)
}

func (o *outcome) show(errs ...error) {
	o.shown.Do(func() {
		o.host.settle()
		for _, e := range errs {
			if o.profile.StaticErrors {
				fmt.Fprint(o.host, errcode.Static(e, o.ref))
			} else {
				fmt.Fprint(o.host, errcode.Detailed(e))
			}
		}
	})
}
