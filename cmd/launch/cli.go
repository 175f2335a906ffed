package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/cmdline"
	"github.com/ampoule-run/ampoule/internal/suggest"
	"github.com/ampoule-run/ampoule/tee"
)

// command is one subcommand of launch: its name, what runs it, and its
// documentation, read from its help file (help/NAME.txt).
type command struct {
	name string
	run  func(ctx context.Context, env *cliEnv, c command, args []string) int
	doc  cmdline.Doc
}

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
	// describe, set by docs alone, receives the flag set a command
	// defines, and the command stops there, having done nothing.
	describe func(*flag.FlagSet)
}

// commands is launch's commands, in the order 'launch help' lists them:
// a command is a row here and its help file.
func commands() []command {
	cs := []command{{name: "run", run: doRun}, {name: "measure", run: doMeasure}, {name: "profiles", run: doProfiles},
		{name: "gate", run: doGate}, {name: "audit", run: doAudit}, {name: "keygen", run: doKeygen}, {name: "logs", run: doLogs},
		{name: "attest", run: doAttest}, {name: "verify", run: doVerify}, {name: "collateral", run: doCollateral},
		{name: "policy", run: doPolicy}, {name: "broker", run: doBroker}, {name: "platform", run: doPlatform},
		{name: "errors", run: doErrors}, {name: "version", run: doVersion},
		{name: "help", run: doHelp}, {name: "man", run: doMan}, {name: "completion", run: doCompletion}}
	for i := range cs {
		cs[i].doc = helpDoc(cs[i].name)
	}
	return cs
}

// helpDoc reads the command's help file; a file missing or of the wrong
// shape (TestHelpFiles refuses both) leaves only its name.
func helpDoc(name string) cmdline.Doc {
	text, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		return cmdline.Doc{Name: name}
	}
	d, err := cmdline.ParseHelp("launch", name, string(text))
	if err != nil {
		return cmdline.Doc{Name: name}
	}
	return d
}

// docs is every command's documentation with its real flag sets: each
// command (under each of its subcommands) is started in describe mode,
// where it defines its flags and stops.
func docs() []cmdline.Doc {
	var out []cmdline.Doc
	for _, c := range commands() {
		d := c.doc
		d.Flags = map[string]*flag.FlagSet{}
		for _, sub := range append([]string{""}, d.Subcommands...) {
			if sub == "" && len(d.Subcommands) > 0 {
				continue
			}
			var args []string
			if sub != "" {
				args = []string{sub}
			}
			env := &cliEnv{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
				describe: func(fs *flag.FlagSet) { d.Flags[sub] = fs }}
			c.run(context.Background(), env, c, args)
		}
		out = append(out, d)
	}
	return out
}

// docOf is the documentation of the command named name, with its flags.
func docOf(name string) cmdline.Doc {
	for _, d := range docs() {
		if d.Name == name {
			return d
		}
	}
	return cmdline.Doc{Name: name}
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
		name = "version"
	case "-h", "-help", "--help":
		name = "help"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, env, c, rest)
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

// intro is what launch is, as its help and man page begin.
const intro = "measures and runs WebAssembly (WASI preview 1) bundles for confidential computing"

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "launch %s.\n\nUsage:\n", intro)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  launch %s\t%s\n", c.name, c.doc.Summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun 'launch COMMAND --help' for a command's flags and an example.\n")
}

// printCommandHelp prints the command's help text and its flags.
func printCommandHelp(w io.Writer, c command) {
	fmt.Fprint(w, docOf(c.name).Text())
}

// fail prints err in full (there is no profile yet, or the command is a
// developer's) and returns the exit status of its class.
func (e *cliEnv) fail(err error) int {
	fmt.Fprint(e.stderr, errcode.Detailed(err))
	return errcode.From(err).Code.Class().ExitStatus()
}

// newFlagSet returns a flag set that reports errors to the caller instead of
// exiting.
func (e *cliEnv) newFlagSet(c command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses flags interleaved with positional arguments, up to a "--"
// after which everything belongs to the workload. It returns the positional
// arguments and those after "--". -h prints help and returns errHelp, as
// describe mode does at once.
func (e *cliEnv) parse(c command, fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	if e.describe != nil {
		e.describe(fs)
		return nil, nil, errHelp
	}
	pos, rest, err = cmdline.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(e.stdout, c)
		return nil, nil, errHelp
	}
	if err != nil {
		hint := fmt.Sprintf("run 'launch %s --help'; the workload's own arguments go after --", c.name)
		if near, ok := cmdline.NearestFlag(fs, err); ok {
			hint = fmt.Sprintf("did you mean --%s? %s", near, hint)
		}
		return nil, nil, errcode.Errorf(errcode.Usage, "%s: %v", c.name, err).WithHint(hint)
	}
	return pos, rest, nil
}

var errHelp = errors.New("help shown")

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
		return "", true, e.fail(errcode.Errorf(errcode.Usage, "%s takes one %s", c.name, what).WithHint("usage: launch " + c.doc.Usage))
	}
	return pos[0], false, 0
}

// subcommand checks that args start with one of the command's
// subcommands ("logs decrypt", "broker serve"), printing help for -h.
// When done is true the command is over and code is its exit status.
func (e *cliEnv) subcommand(c command, args []string) (sub string, rest []string, done bool, code int) {
	subs := c.doc.Subcommands
	if len(args) > 0 && slices.Contains(subs, args[0]) {
		return args[0], args[1:], false, 0
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		printCommandHelp(e.stdout, c)
		return "", nil, true, 0
	}
	hint := "usage: launch " + c.doc.Usage
	if len(args) > 0 {
		if near, ok := suggest.Nearest(args[0], subs); ok {
			hint = fmt.Sprintf("did you mean 'launch %s %s'? %s", c.name, near, hint)
		}
	}
	list := strings.Join(subs, ", ")
	if n := len(subs); n > 1 {
		list = strings.Join(subs[:n-1], ", ") + " or " + subs[n-1]
	}
	return "", nil, true, e.fail(errcode.Errorf(errcode.Usage, "%s takes the subcommand %s", c.name, list).WithHint(hint))
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
		return true, e.fail(errcode.Errorf(errcode.Usage, "%s takes no arguments", c.name).WithHint("usage: launch " + c.doc.Usage))
	}
	return false, 0
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
