package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
)

// The fixed warnings, as the host sees them.
var (
	withheldWarning = warningLine(ampoule.WarningWithheld)
	simWarning      = warningLine(ampoule.WarningSim)
	teeDebugWarning = warningLine(ampoule.WarningTEEDebug)
)

func warningLine(w string) string { return "launch: warning: " + w + "\n" }

// teeFlags are the flags of a command that measures a bundle under a
// profile and binds it into a TEE backend's evidence (run, attest),
// defined once so that both say the same.
type teeFlags struct{ profile, backend, simKey string }

func (t *teeFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&t.profile, "profile", "debug", "the profile: debug, staging or production")
	fs.StringVar(&t.backend, "backend", "", "the TEE backend: auto, sim, snp or tdx (default: sim under debug, auto otherwise; auto never falls back to sim under production)")
	fs.StringVar(&t.simKey, "sim-key", "", "the simulator's key file, for the evidence (default: the user's config dir)")
}

// runFlags are run's flags: those the library takes as they are go
// straight into cfg, the rest runConfig reads.
type runFlags struct {
	tee                               teeFlags
	cfg                               ampoule.Config
	verbose, force, quiet             bool
	auditJSON, logOut, handOn, server string
	dirs, env                         stringList
}

func cmdRun(fs *flag.FlagSet) action {
	var f runFlags
	f.define(fs)
	return func(ctx context.Context, e *cliEnv, c command, in invocation) (status int) {
		pos, guestArgs := in.Pos, in.Rest
		fail := e.runFail(f.cfg.LogJSON)
		if err := oneBundle(c, pos); err != nil {
			return fail(err)
		}
		profile, err := profiles.Get(f.tee.profile)
		if err != nil {
			return fail(err)
		}
		// Before anything is read or written: a protected launcher may
		// start again, and writes to the host's stderr anew.
		var protectErr error
		if profile.Protected && e.protect != nil {
			protectErr = e.protect()
		}
		host := ampoule.NewHostLines(e.stdout, e.stderr, !profile.PlainLogs && ampoule.ToStderr(f.logOut))
		cfg, err := e.runConfig(f, guestArgs, host)
		out := &ampoule.Outcome{Host: host, Profile: profile, Ref: cfg.Ref}
		if cfg.LogJSON {
			// launch's own lines are records too.
			out.JSON = ampoule.NewJSONLines(host)
			cfg.Warnings = out.JSON
		}
		if err != nil {
			return fail(err)
		}
		// A compile's progress line, on a terminal; none under --quiet,
		// nor among --log-json's records.
		cfg.Compiling = host.Progress(f.quiet || f.cfg.LogJSON, e.progressAfter)
		// A run that does not unwind in time after a signal still shows the
		// host its line and exits 130 (main).
		defer ampoule.AtExit(func() {
			out.Show(errcode.Errorf(errcode.Interrupted, "the run was stopped and did not unwind in time"))
		})()
		if profile.Protected && e.protect != nil {
			if protectErr != nil {
				return out.Finish(ampoule.Result{}, protectErr)
			}
			// A panic here shows the host the static line, not its value.
			defer func() {
				if v := recover(); v != nil {
					status = out.Finish(ampoule.Result{}, errcode.Errorf(errcode.Internal, "panic: %v", v))
				}
			}()
		}
		var res ampoule.Result
		if f.server != "" {
			res, err = ampoule.RunRemote(ctx, f.server, pos[0], cfg)
		} else {
			res, err = ampoule.Run(ctx, pos[0], cfg)
		}
		res.WriteAudit(e.stderr, f.auditJSON)
		return out.Finish(res, err)
	}
}

// oneBundle checks run's arguments: one BUNDLE, the workload's own after
// "--".
func oneBundle(c command, pos []string) error {
	if len(pos) == 1 {
		return nil
	}
	hint := "usage: launch " + c.Doc.Usage
	if len(pos) > 1 {
		hint = fmt.Sprintf("the workload's arguments go after --: launch run [flags] %s -- %s", pos[0], strings.Join(pos[1:], " "))
	}
	return errcode.Errorf(errcode.Usage, "run takes one BUNDLE, got %d arguments", len(pos)).WithHint(hint)
}

// runFail is how run shows an error before the run has a profile's lines:
// in full, as fail shows it, or as a JSON record under --log-json.
func (e *cliEnv) runFail(logJSON bool) func(error) int {
	if !logJSON {
		return e.fail
	}
	return func(err error) int { return ampoule.FailJSON(e.stderr, err) }
}

// define declares run's flags on fs.
func (f *runFlags) define(fs *flag.FlagSet) {
	f.tee.define(fs)
	fs.Var(&f.dirs, "dir", "preopen a host directory: HOST::GUEST (read-only), HOST::GUEST::rw, or HOST alone at the same path in the guest, read-only (debug only; repeatable)")
	fs.Var(&f.env, "env", "set a workload environment variable K=V, or NAME to pass on launch's own (debug only; repeatable)")
	fs.StringVar(&f.cfg.CacheDir, "cache-dir", "", "keep compiled code in this directory (default: the user's cache dir); under staging and production, the authenticated cache's disk tier")
	fs.BoolVar(&f.cfg.NoCache, "no-cache", false, "compile in memory, with no on-disk cache")
	fs.BoolVar(&f.cfg.InterpretFirst, "interpret-first", false, "run a module the cache has not seen in wazero's interpreter while it compiles into the cache: the first output in a fraction of a compile, slower computing for that run")
	fs.BoolVar(&f.verbose, "v", false, "log what runs and its measurement (to stderr under debug, to the tenant's log otherwise)")
	fs.BoolVar(&f.cfg.LogJSON, "log-json", false, "write the runtime's own log records, and launch's warnings and final error with its hint, as JSON records rather than text")
	fs.BoolVar(&f.cfg.TraceCalls, "trace-calls", false, "print every host call, its arguments and its result to stderr (debug only)")
	fs.BoolVar(&f.cfg.Confine, "confine", false, "confine the runner with seccomp (EPERM) under debug too; staging and production always do")
	fs.StringVar(&f.handOn, "hand-on", "", "a hand-on (launch sealed sign): the consent that this version takes over an earlier one's TEE-sealed store, which its [sealed] accept_from names")
	fs.StringVar(&f.cfg.SealedStore, "sealed", "", "the encrypted store of the manifest's [sealed] mount (default: $XDG_STATE_HOME/ampoule/sealed/NAME.PROFILE.sealed)")
	fs.StringVar(&f.logOut, "log-out", "-", "where the encrypted log goes under staging and production: a new file (an existing one is refused), unix:SOCKET, or - for stderr (launch's own lines then go to stdout)")
	fs.BoolVar(&f.force, "force", false, "let --log-out replace an existing file")
	fs.BoolVar(&f.quiet, "q", false, quietUsage)
	fs.BoolVar(&f.quiet, "quiet", false, quietUsage)
	fs.BoolVar(&f.cfg.Audit, "audit", false, "count the runner's system calls with eBPF and print them at exit (debug only; needs root)")
	fs.StringVar(&f.server, "server", "", "send the run to 'launch serve' at unix:PATH, which runs it with a warm runner; what the host sees is what 'launch run' shows")
	fs.StringVar(&f.auditJSON, "audit-json", "", "with --audit, also write the counts as JSON to this file, for 'launch audit --suggest'")
}

// runConfig turns run's flags into the library's settings; the run's own
// lines for the host go to host.
func (e *cliEnv) runConfig(f runFlags, guestArgs []string, host *ampoule.HostLines) (cfg ampoule.Config, err error) {
	cfg = f.cfg
	cfg.Profile, cfg.Backend, cfg.SimKey = f.tee.profile, f.tee.backend, f.tee.simKey
	cfg.Platform, cfg.TEE, cfg.Runner, cfg.Args = e.platform, e.tee, e.runner, guestArgs
	cfg.Stdin, cfg.Stdout, cfg.Stderr, cfg.Warnings = e.stdin, e.stdout, e.stderr, host
	cfg.Ref = ampoule.NewRef()
	cfg.LogSink = func() (io.WriteCloser, error) { return host.Sink(f.logOut, f.force) }
	// The log is open by now, if the run has one.
	cfg.BeforeStart = func(int) { host.Settle() }
	if f.handOn != "" {
		if cfg.SealedHandOn, err = ampoule.ReadHandOn(f.handOn); err != nil {
			return cfg, err
		}
	}
	if f.verbose {
		cfg.LogLevel = hclog.Info
	}
	cfg.Env, cfg.Dirs, err = ampoule.ParseOverrides(f.env, f.dirs)
	return cfg, err
}
