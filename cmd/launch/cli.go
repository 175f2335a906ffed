package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/cmdline"
	"github.com/ampoule-run/ampoule/tee"
)

// command is one subcommand of launch: its name, its flags and what runs
// with them (the action), the arguments it takes, the rules its command
// line must follow, and its documentation, read from its help file
// (help/NAME.txt).
type command = cmdline.Command[action]

// action is what a command does once its subcommand, flags and arguments
// are parsed; it returns launch's exit status.
type action func(ctx context.Context, e *cliEnv, c command, in invocation) int

// invocation is a command's parsed command line.
type invocation = cmdline.Invocation

// helpFiles hold each command's summary, usage, description and examples:
// the one source of its --help, the man page and the shell completion.
//
//go:embed help/*.txt
var helpFiles embed.FS

// cliEnv is what a command may touch: its streams, and nothing global.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// protect, set by main alone, makes the process a protected launcher
	// (ampoule.Protect) once a run's profile asks for it, before the run
	// reads anything, and points stderr at the host's standard error anew.
	// A test calling run in-process has none: its tests of protection run
	// the launch binary.
	protect func() error
	// drain, set by main alone, makes the first SIGINT or SIGTERM drain a
	// server rather than end the process (ampoule.Stopper.Drain).
	drain func()
	// runner is the binary started as a run's runner; empty: this
	// executable, as always outside tests.
	runner string
	// platform and tee, set by tests alone, stand for what the machine
	// offers and the backend a run uses (a fake device).
	platform *tee.Platform
	tee      tee.Backend
	// quiet hides informational lines (quietFlag).
	quiet bool
	// progressAfter, set by tests alone, replaces progressAfter.
	progressAfter time.Duration
}

// program is launch as data: its commands, in the order 'launch help'
// lists them; a command is a row here and its help file.
func program() cmdline.Program[action] {
	cs := []command{
		{Name: "run", Flags: cmdRun, Args: cmdline.Any, Rules: []cmdline.Rule{{If: []string{"audit-json"}, Needs: []string{"audit"}, Msg: "--audit-json needs --audit"}}},
		{Name: "measure", Flags: cmdMeasure, Args: "BUNDLE"},
		{Name: "profiles", Flags: cmdProfiles},
		{Name: "gate", Flags: cmdGate},
		{Name: "audit", Flags: cmdAudit, Rules: []cmdline.Rule{{Needs: []string{"suggest"}, Msg: "audit needs --suggest FILE"}}},
		{Name: "keygen", Flags: cmdKeygen, Rules: []cmdline.Rule{{If: []string{"y"}, Refuses: []string{"o"}, Msg: "keygen takes -o or -y, not both"}}},
		{Name: "logs", Flags: cmdLogs, Args: cmdline.Any, Rules: []cmdline.Rule{{Args: "0-1", Needs: []string{"identity"}, Msg: "logs decrypt needs --identity and at most one LOG"}}},
		{Name: "attest", Flags: cmdAttest, Args: "BUNDLE"},
		{Name: "verify", Flags: cmdVerify, Args: cmdline.Any, Rules: []cmdline.Rule{
			{If: []string{"vcek", "vlek", "chain"}, Needs: []string{"snp-report"}, Msg: "--vcek, --vlek and --chain go with --snp-report FILE"},
			{Unless: []string{"ear", "snp-report", "tdx-quote"}, Args: "1", Needs: []string{"policy"}, Msg: "verify needs --policy and one EVIDENCE file"}}},
		{Name: "collateral", Flags: cmdCollateral, Rules: []cmdline.Rule{{Needs: []string{"tdx-quote"}, Msg: "collateral fetch needs --tdx-quote FILE"}}},
		{Name: "policy", Flags: cmdPolicy, Rules: []cmdline.Rule{{Needs: []string{"from"}, Msg: "policy new needs --from BUNDLE"}}},
		{Name: "broker", Flags: cmdBroker, Args: cmdline.Any, Rules: []cmdline.Rule{
			{Subs: []string{"serve", "key", "audit"}, Args: "0", Msg: "broker {sub} takes no arguments"},
			{Needs: []string{"db"}, Msg: "broker {sub} needs --db FILE"},
			{Subs: []string{"serve"}, Needs: []string{"policy"}, Msg: "broker serve needs --policy FILE", Hint: "write one with: launch policy new --from BUNDLE"},
			{Subs: []string{"serve"}, If: []string{"tls-cert", "tls-key"}, Needs: []string{"tls-cert", "tls-key"}, Msg: "--tls-cert and --tls-key go together"}}},
		{Name: "sealed", Flags: cmdSealed, Args: cmdline.Any, Rules: []cmdline.Rule{
			{Subs: []string{"export"}, Args: "1", Needs: []string{"o"}, Msg: "sealed export takes one BUNDLE and -o DIR"},
			{Subs: []string{"import"}, Args: "2", Refuses: []string{"o"}, Msg: "sealed import takes a BUNDLE and the DIR to seal, and no -o"},
			{Subs: []string{"keygen"}, Args: "0", Msg: "sealed keygen takes no arguments"},
			{Subs: []string{"keygen"}, Needs: []string{"o"}, Msg: "sealed keygen needs -o KEY"},
			{Subs: []string{"sign"}, Args: "1", Msg: "sealed sign takes one BUNDLE"},
			{Subs: []string{"sign"}, Needs: []string{"key", "from"}, Msg: "sealed sign needs --key KEY and --from MEASUREMENT"}}},
		{Name: "platform", Flags: cmdPlatform},
		{Name: "errors", Flags: cmdErrors},
		{Name: "version", Flags: cmdVersion},
		{Name: "help", Args: cmdline.Any, Rules: []cmdline.Rule{{Args: "0-1", Msg: "help takes at most one COMMAND"}}},
		{Name: "man"},
		{Name: "completion"},
		{Name: "cache", Flags: cmdCache},
		{Name: "init", Flags: cmdInit, Args: "NAME"},
		{Name: "serve", Flags: cmdServe},
		{Name: "vm", Flags: cmdVM, Args: cmdline.Any, Rules: []cmdline.Rule{
			{Args: "1", Msg: "vm {sub} takes one BUNDLE"},
			{Subs: []string{"build"}, Needs: []string{"o"}, Msg: "vm {sub} takes one BUNDLE"}}},
		{Name: "image", Flags: cmdImage, Args: cmdline.Any, Rules: []cmdline.Rule{
			{Args: "1", Needs: []string{"o"}, Msg: "image build takes one BUNDLE, -o FILE and --name REF"}}},
	}
	// An embedded file missing or misshapen leaves the name and flags
	// alone; TestHelpFiles refuses both.
	return cmdline.NewProgram(helpFiles, "help", "launch", intro, cs)
}

// intro is what launch is, as its help and man page begin.
const intro = "measures and runs WebAssembly (WASI preview 1) bundles for confidential computing"

// run is the whole CLI: main only wires the process to it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return (&cliEnv{stdin: stdin, stdout: stdout, stderr: stderr}).run(ctx, args)
}

// run parses the command line args and runs the command it names in env;
// help, or a usage error (E1001), ends it first.
func (env *cliEnv) run(ctx context.Context, args []string) int {
	p := program()
	c, act, in, err := p.Parse(args)
	switch {
	case errors.Is(err, cmdline.ErrNoCommand):
		p.Help(env.stderr, nil)
		return errcode.ClassUsage.ExitStatus()
	case errors.Is(err, cmdline.ErrHelp):
		fmt.Fprint(env.stdout, c.Doc.Text())
		return 0
	case err != nil:
		return env.fail(usageError(err))
	}
	// help, man and completion are the machinery's.
	if ok, err := p.Builtin(c.Name, in, env.stdout); ok {
		if err != nil {
			return env.fail(usageError(err))
		}
		return 0
	}
	return act(ctx, env, c, in)
}

// fail prints err in full (there is no profile yet, or the command is a
// developer's) and returns the exit status of its class.
func (e *cliEnv) fail(err error) int {
	fmt.Fprint(e.stderr, errcode.Detailed(err))
	return errcode.From(err).Code.Class().ExitStatus()
}

// usageError is a command line's error (cmdline's) as E1001 usage;
// anything else cmdline returns (writing help out) is internal.
func usageError(err error) error {
	var u *cmdline.UsageError
	if errors.As(err, &u) {
		return errcode.Errorf(errcode.Usage, "%s", u.Msg).WithHint(u.Hint)
	}
	return errcode.Errorf(errcode.Internal, "%w", err)
}

// parseAt reads --at: empty means now.
func parseAt(at string) (time.Time, error) {
	if at == "" {
		return time.Now(), nil
	}
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return time.Time{}, errcode.Errorf(errcode.Usage, "--at %q is not an RFC 3339 time", at).WithHint("write it as 2026-01-02T15:04:05Z")
	}
	return t, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// quietFlag declares -q and --quiet on fs: they hide launch's own
// informational lines (what it made, what a log was found bound to, a
// compile's progress), never an error and never a warning, so that a
// script or a CI job sees only what asks for attention. The command's
// action sets cliEnv.quiet from it.
func quietFlag(fs *flag.FlagSet) *bool {
	q := new(bool)
	fs.BoolVar(q, "q", false, quietUsage)
	fs.BoolVar(q, "quiet", false, quietUsage)
	return q
}

const quietUsage = "print no informational lines (errors and warnings still are)"

// info is where an informational line goes: w, or nowhere under --quiet.
func (e *cliEnv) info(w io.Writer) io.Writer {
	if e.quiet {
		return io.Discard
	}
	return w
}
