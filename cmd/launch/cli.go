package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/suggest"
	"github.com/ampoule-run/ampoule/tee"
)

// command is one subcommand of launch.
type command struct {
	name    string
	summary string
	usage   string // the synopsis after "launch "
	help    string // the long description, with an example
	run     func(ctx context.Context, env *cliEnv, args []string) int
}

// cliEnv is what a command may touch: its streams, and nothing global.
type cliEnv struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// protect, set by main alone, makes the process a protected launcher
	// (protectLauncher) once a run's profile asks for it, before the run
	// reads anything. A test calling run in-process has none: its tests of
	// protection run the launch binary.
	protect func() error
	// runner is the binary started as a run's runner; empty: this
	// executable, as always outside tests.
	runner string
	// platform and tee, set by tests alone, stand for what the machine
	// offers and the backend a run uses (a fake device).
	platform *tee.Platform
	tee      tee.Backend
}

func commands() []command {
	return []command{runCommand(), measureCommand(), profilesCommand(), gateCommand(), auditCommand(), keygenCommand(), logsCommand(), attestCommand(), verifyCommand(), collateralCommand(), policyCommand(), brokerCommand(), platformCommand(), errorsCommand(), versionCommand(), serveCommand()}
}

// run is the whole CLI: main only wires the process to it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return (&cliEnv{stdin: stdin, stdout: stdout, stderr: stderr}).run(ctx, args)
}

// run runs the command args name in env.
func (env *cliEnv) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		printUsage(env.stderr)
		return errcode.ClassUsage.ExitStatus()
	}
	name, rest := args[0], args[1:]
	switch name {
	case "--version", "-version":
		return versionCommand().run(ctx, env, rest)
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			for _, c := range commands() {
				if c.name == rest[0] {
					printCommandHelp(env.stdout, c)
					return 0
				}
			}
			return env.fail(unknownCommand(rest[0]))
		}
		printUsage(env.stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, env, rest)
		}
	}
	return env.fail(unknownCommand(name))
}

// unknownCommand is the error for a command launch does not have, naming
// the nearest one it has.
func unknownCommand(name string) error {
	hint := "run 'launch help' to list the commands"
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	if near, ok := suggest.Nearest(name, names); ok {
		hint = fmt.Sprintf("did you mean 'launch %s'? %s", near, hint)
	}
	return errcode.Errorf(errcode.Usage, "no command %q", name).WithHint(hint)
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "launch measures and runs WebAssembly (WASI preview 1) bundles for confidential computing.\n\nUsage:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  launch %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'launch COMMAND --help' for a command's flags and an example.\n")
}

func printCommandHelp(w io.Writer, c command) {
	fmt.Fprintf(w, "Usage: launch %s\n\n%s\n", c.usage, strings.TrimSpace(c.help))
}

// fail prints err in full (there is no profile yet, or the command is a
// developer's) and returns the exit status of its class.
func (e *cliEnv) fail(err error) int {
	fmt.Fprint(e.stderr, errcode.Detailed(err))
	return errcode.From(err).Code.Class().ExitStatus()
}

// newFlagSet returns a flag set that reports errors to the caller instead of
// exiting, and prints the command's help on -h.
func (e *cliEnv) newFlagSet(c command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses flags interleaved with positional arguments, up to a "--"
// after which everything belongs to the workload. It returns the positional
// arguments and those after "--". -h prints help and returns errHelp.
func (e *cliEnv) parse(c command, fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	for {
		if len(args) > 0 && args[0] == "--" {
			return pos, args[1:], nil
		}
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				e.commandHelp(c, fs)
				return nil, nil, errHelp
			}
			return nil, nil, errcode.Errorf(errcode.Usage, "%s: %v", c.name, err).
				WithHint(flagHint(c, fs, err))
		}
		remaining := fs.Args()
		consumed := args[:len(args)-len(remaining)]
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return pos, remaining, nil
		}
		if len(remaining) == 0 {
			return pos, nil, nil
		}
		pos = append(pos, remaining[0])
		args = remaining[1:]
	}
}

var errHelp = errors.New("help shown")

// flagHint is the hint for a flag the command could not parse: the flag
// it has nearest to an undefined one, and where its help is.
func flagHint(c command, fs *flag.FlagSet, err error) string {
	hint := fmt.Sprintf("run 'launch %s --help'; the workload's own arguments go after --", c.name)
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: ")
	if !ok {
		return hint
	}
	name = strings.TrimLeft(name, "-")
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if near, ok := suggest.Nearest(name, names); ok {
		return fmt.Sprintf("did you mean --%s? %s", near, hint)
	}
	return hint
}

// parseOne parses the flags of a command that takes exactly one positional
// argument (a bundle, a file). When done is true the command is over and
// code is its exit status.
func (e *cliEnv) parseOne(c command, fs *flag.FlagSet, args []string, what string) (arg string, done bool, code int) {
	pos, rest, err := e.parse(c, fs, args)
	switch {
	case err == errHelp:
		return "", true, 0
	case err != nil:
		return "", true, e.fail(err)
	case len(pos) != 1 || len(rest) > 0:
		return "", true, e.fail(errcode.Errorf(errcode.Usage, "%s takes one %s", c.name, what).WithHint("usage: launch " + c.usage))
	}
	return pos[0], false, 0
}

// subcommand checks that args start with the command's one subcommand
// ("logs decrypt", "policy new"), printing help for -h. When done is true
// the command is over and code is its exit status.
func (e *cliEnv) subcommand(c command, args []string, sub string) (rest []string, done bool, code int) {
	if len(args) > 0 && args[0] == sub {
		return args[1:], false, 0
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		printCommandHelp(e.stdout, c)
		return nil, true, 0
	}
	hint := "usage: launch " + c.usage
	if len(args) > 0 {
		if _, ok := suggest.Nearest(args[0], []string{sub}); ok {
			hint = fmt.Sprintf("did you mean 'launch %s %s'? %s", c.name, sub, hint)
		}
	}
	return nil, true, e.fail(errcode.Errorf(errcode.Usage, "%s takes the subcommand %s", c.name, sub).WithHint(hint))
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

// parseNoArgs parses the flags of a command that takes no arguments. When
// done is true the command is over (help shown, or a usage error printed)
// and code is its exit status.
func (e *cliEnv) parseNoArgs(c command, fs *flag.FlagSet, args []string) (done bool, code int) {
	pos, rest, err := e.parse(c, fs, args)
	switch {
	case err == errHelp:
		return true, 0
	case err != nil:
		return true, e.fail(err)
	case len(pos)+len(rest) > 0:
		return true, e.fail(errcode.Errorf(errcode.Usage, "%s takes no arguments", c.name).WithHint("usage: launch " + c.usage))
	}
	return false, 0
}

func (e *cliEnv) commandHelp(c command, fs *flag.FlagSet) {
	printCommandHelp(e.stdout, c)
	var b strings.Builder
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	if b.Len() > 0 {
		fmt.Fprintf(e.stdout, "\nFlags:\n%s", b.String())
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newCorrelationID returns 16 hex digits naming one run in both the host's
// view and the tenant's log.
func newCorrelationID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "0000000000000000"
	}
	return hex.EncodeToString(b[:])
}
