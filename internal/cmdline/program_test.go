package cmdline

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"testing/fstest"
)

// testCommands is a program of two commands whose action is the value
// their --profile flag had.
func testCommands() []Command[func() string] {
	flags := func(fs *flag.FlagSet) func() string {
		p := fs.String("profile", "debug", "the profile")
		return func() string { return *p }
	}
	fsys := fstest.MapFS{"help/logs.txt": {Data: []byte(logsHelp)}}
	return LoadAll(fsys, "help", "prog", []Command[func() string]{
		{Name: "logs", Flags: flags, Args: Any, Rules: []Rule{{Subs: []string{"rotate"}, Args: "0", Msg: "logs rotate takes no LOG"}}},
		{Name: "none", Flags: flags},
	})
}

// TestProgram: each command gets its help file's Doc with its real flags
// (a missing file leaves its name and flags); Find finds a command or
// names the nearest; Parse hands back the action bound to the flags it
// parsed, applies the command's Rules after Invoke, and reports -h.
func TestProgram(t *testing.T) {
	cs := testCommands()
	if d := cs[0].Doc; d.Summary == "" || d.Flags["decrypt"] == nil || d.Flags["decrypt"].Lookup("profile") == nil {
		t.Errorf("logs: %+v", d)
	}
	if d := cs[1].Doc; d.Name != "none" || d.Summary != "" || d.Flags[""].Lookup("profile") == nil {
		t.Errorf("none: %+v", d)
	}
	if docs := Docs(cs); len(docs) != 2 || docs[0].Name != "logs" || docs[1].Name != "none" {
		t.Errorf("docs %+v", docs)
	}
	c, err := Find("prog", cs, "logs")
	if err != nil || c.Name != "logs" {
		t.Fatalf("%+v, %v", c, err)
	}
	if _, err := Find("prog", cs, "lgos"); err == nil || !strings.Contains(err.(*UsageError).Hint, "did you mean 'prog logs'?") {
		t.Errorf("lgos: %v", err)
	}
	act, in, err := c.Parse("prog", []string{"decrypt", "--profile", "staging", "run.log"})
	if err != nil || act() != "staging" || in.Sub != "decrypt" || in.Pos[0] != "run.log" {
		t.Errorf("decrypt: %+v %v", in, err)
	}
	// A second parse has flags of its own.
	if act, _, err := c.Parse("prog", []string{"decrypt"}); err != nil || act() != "debug" {
		t.Errorf("decrypt again: %v", err)
	}
	if _, _, err := c.Parse("prog", []string{"rotate", "run.log"}); err == nil || err.(*UsageError).Msg != "logs rotate takes no LOG" {
		t.Errorf("rotate with a LOG: %v", err)
	}
	if _, _, err := c.Parse("prog", []string{"decrypt", "-h"}); !errors.Is(err, ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

// TestProgramParse: a program finds the command its command line names,
// with -h and --help naming help and --version version, reports a line
// without a command and a command's -h; its Help writes the overview or a
// command's whole help, and refuses a command it does not have.
func TestProgramParse(t *testing.T) {
	flags := func(fs *flag.FlagSet) func() string {
		p := fs.String("profile", "debug", "the profile")
		return func() string { return *p }
	}
	fsys := fstest.MapFS{"help/logs.txt": {Data: []byte(logsHelp)}}
	p := NewProgram(fsys, "help", "prog", "does things", []Command[func() string]{
		{Name: "logs", Flags: flags, Args: Any}, {Name: "help", Flags: flags, Args: Any}, {Name: "version", Flags: flags},
	})
	if _, _, _, err := p.Parse(nil); !errors.Is(err, ErrNoCommand) {
		t.Errorf("no command: %v", err)
	}
	for arg, want := range map[string]string{"--help": "help", "-h": "help", "-help": "help", "--version": "version", "-version": "version", "logs": "logs"} {
		if c, _, _, err := p.Parse([]string{arg}); (err != nil && arg != "logs") || c.Name != want {
			t.Errorf("%s: %q, %v; want %s", arg, c.Name, err, want)
		}
	}
	c, act, in, err := p.Parse([]string{"logs", "decrypt", "--profile", "staging", "run.log"})
	if err != nil || c.Name != "logs" || act() != "staging" || in.Sub != "decrypt" {
		t.Errorf("logs decrypt: %q %+v %v", c.Name, in, err)
	}
	if c, _, _, err := p.Parse([]string{"logs", "decrypt", "-h"}); !errors.Is(err, ErrHelp) || c.Name != "logs" {
		t.Errorf("logs decrypt -h: %q, %v", c.Name, err)
	}
	var u *UsageError
	if _, _, _, err := p.Parse([]string{"lgos"}); !errors.As(err, &u) || !strings.Contains(u.Hint, "'prog logs'") {
		t.Errorf("lgos: %v", err)
	}
	var b strings.Builder
	if err := p.Help(&b, nil); err != nil || !strings.HasPrefix(b.String(), "prog does things.\n") || !strings.Contains(b.String(), "prog logs ") {
		t.Errorf("overview (%v):\n%s", err, b.String())
	}
	b.Reset()
	if err := p.Help(&b, []string{"logs"}); err != nil || b.String() != p.Commands[0].Doc.Text() {
		t.Errorf("help logs (%v):\n%s", err, b.String())
	}
	if err := p.Help(&b, []string{"lgos"}); !errors.As(err, &u) {
		t.Errorf("help lgos: %v", err)
	}
	b.Reset()
	if err := p.Man(&b); err != nil || !strings.Contains(b.String(), ".SS logs\n") {
		t.Errorf("man (%v):\n%s", err, b.String())
	}
	b.Reset()
	if err := p.Completion(&b, "bash"); err != nil || !strings.Contains(b.String(), "decrypt") {
		t.Errorf("completion (%v):\n%s", err, b.String())
	}
}

// TestBuiltin: a command declared without Flags parses with no flags and
// runs the machinery's own work: help writes the overview or a command's
// help (and refuses one the program lacks), man the man page, completion
// the script for its shell; any other command is not a builtin, and an
// error writing says what was being written.
func TestBuiltin(t *testing.T) {
	fsys := fstest.MapFS{"help/logs.txt": {Data: []byte(logsHelp)}}
	p := NewProgram(fsys, "help", "prog", "does things", []Command[func() string]{
		{Name: "logs", Flags: func(fs *flag.FlagSet) func() string { return func() string { return "" } }, Args: Any},
		{Name: "help", Args: Any}, {Name: "man"},
	})
	c, act, in, err := p.Parse([]string{"help", "logs"})
	if err != nil || c.Name != "help" || act != nil || len(in.Pos) != 1 {
		t.Fatalf("help logs: %q %+v %v", c.Name, in, err)
	}
	var b strings.Builder
	if ok, err := p.Builtin(c.Name, in, &b); !ok || err != nil || b.String() != p.Commands[0].Doc.Text() {
		t.Errorf("help logs: %v %v\n%s", ok, err, b.String())
	}
	var u *UsageError
	if ok, err := p.Builtin("help", Invocation{Pos: []string{"lgos"}}, &b); !ok || !errors.As(err, &u) {
		t.Errorf("help lgos: %v %v", ok, err)
	}
	b.Reset()
	if ok, err := p.Builtin("man", Invocation{}, &b); !ok || err != nil || !strings.Contains(b.String(), ".SS logs\n") {
		t.Errorf("man: %v %v\n%s", ok, err, b.String())
	}
	b.Reset()
	if ok, err := p.Builtin("completion", Invocation{Sub: "bash"}, &b); !ok || err != nil || !strings.Contains(b.String(), "decrypt") {
		t.Errorf("completion: %v %v\n%s", ok, err, b.String())
	}
	if ok, err := p.Builtin("logs", Invocation{}, &b); ok || err != nil {
		t.Errorf("logs is not a builtin: %v %v", ok, err)
	}
	if _, err := p.Builtin("man", Invocation{}, failingWriter{}); err == nil || !strings.Contains(err.Error(), "writing the man page") {
		t.Errorf("man to a failing writer: %v", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
