package cmdline

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

const logsHelp = `decrypt and verify a run's log

Usage: prog logs decrypt --identity FILE [LOG]
       prog logs rotate [--keep N]

Logs decrypt opens a log.

Examples:
  prog logs decrypt --identity id run.log
`

func TestParseHelp(t *testing.T) {
	d, err := ParseHelp("prog", "logs", logsHelp)
	if err != nil {
		t.Fatal(err)
	}
	if d.Summary != "decrypt and verify a run's log" || !slices.Equal(d.Subcommands, []string{"decrypt", "rotate"}) {
		t.Errorf("summary %q, subcommands %q", d.Summary, d.Subcommands)
	}
	if want := "logs decrypt --identity FILE [LOG]\n       prog logs rotate [--keep N]"; d.Usage != want {
		t.Errorf("usage %q, want %q", d.Usage, want)
	}
	if !strings.HasPrefix(d.Help, "Usage: prog logs decrypt") || !strings.HasSuffix(d.Help, "run.log\n") {
		t.Errorf("help %q", d.Help)
	}
	run, err := ParseHelp("prog", "run", "run it\n\nUsage: prog run [--profile P] BUNDLE\n\nRun runs.\n")
	if err != nil || len(run.Subcommands) != 0 {
		t.Errorf("run: %+v, %v", run, err)
	}
	for name, text := range map[string]string{
		"no summary":         "Usage: prog logs decrypt\n\nbody\n",
		"a two-line summary": "one\ntwo\n\nUsage: prog logs decrypt\n",
		"no usage":           "summary\n\nLogs decrypt opens a log.\n",
		"another command":    "summary\n\nUsage: prog run BUNDLE\n",
		"another program":    "summary\n\nUsage: other logs decrypt\n",
		"a stray line":       "summary\n\nUsage: prog logs decrypt\nsomething else\n",
		"empty":              "",
	} {
		if _, err := ParseHelp("prog", "logs", text); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParseHelp: any text is parsed or refused, never a panic; what is
// accepted has a one-line summary and a usage naming the command.
func FuzzParseHelp(f *testing.F) {
	f.Add(logsHelp)
	f.Add("s\n\nUsage: prog logs\n")
	f.Fuzz(func(t *testing.T, text string) {
		d, err := ParseHelp("prog", "logs", text)
		if err != nil {
			return
		}
		if d.Summary == "" || strings.Contains(d.Summary, "\n") || !strings.HasPrefix(d.Usage, "logs") {
			t.Errorf("accepted %q as %+v", text, d)
		}
	})
}

func newFS() (*flag.FlagSet, *string, *bool) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs, fs.String("profile", "debug", "the profile"), fs.Bool("v", false, "verbose")
}

// TestParse: flags interleave with positional arguments; "--" ends the
// flags, and what follows is the workload's untouched, flags included.
func TestParse(t *testing.T) {
	fs, profile, v := newFS()
	pos, rest, err := Parse(fs, []string{"a", "--profile", "staging", "b", "-v", "--", "--profile", "c"})
	if err != nil || !slices.Equal(pos, []string{"a", "b"}) || !slices.Equal(rest, []string{"--profile", "c"}) || *profile != "staging" || !*v {
		t.Errorf("pos %q rest %q profile %q v %v err %v", pos, rest, *profile, *v, err)
	}
	fs, _, _ = newFS()
	if _, _, err := Parse(fs, []string{"-h"}); err != ErrHelp {
		t.Errorf("-h: %v", err)
	}
	fs, _, _ = newFS()
	_, _, err = Parse(fs, []string{"--profle", "x"})
	if near, ok := NearestFlag(fs, err); !ok || near != "profile" {
		t.Errorf("--profle: %v, nearest %q %v", err, near, ok)
	}
	if _, ok := NearestFlag(fs, ErrHelp); ok {
		t.Error("a nearest flag for -h")
	}
}

// TestText: the help, then each distinct flag set once, headed by the
// subcommands that take it.
func TestText(t *testing.T) {
	d, _ := ParseHelp("prog", "logs", logsHelp)
	a, _, _ := newFS()
	b := flag.NewFlagSet("b", flag.ContinueOnError)
	b.Int("keep", 3, "how many")
	d.Flags = map[string]*flag.FlagSet{"decrypt": a, "rotate": b}
	text := d.Text()
	if !strings.HasPrefix(text, d.Help) || !strings.Contains(text, "\nFlags of logs decrypt:\n  -profile string") || !strings.Contains(text, "\nFlags of logs rotate:\n  -keep int") {
		t.Errorf("text:\n%s", text)
	}
	same, _, _ := newFS()
	d.Flags["rotate"] = same
	if text := d.Text(); !strings.Contains(text, "\nFlags:\n") || strings.Count(text, "-profile") != 1 {
		t.Errorf("shared flags:\n%s", text)
	}
}

// TestInvoke: the subcommand first (the nearest named for a misspelled
// one), then flags and arguments, as many as the command takes; -h is
// ErrHelp before or after the subcommand; an unknown command names the
// nearest.
func TestInvoke(t *testing.T) {
	d, _ := ParseHelp("prog", "logs", logsHelp)
	in, err := Invoke("prog", d, flag.NewFlagSet("logs", flag.ContinueOnError), Any, []string{"decrypt", "a", "--", "b"})
	if err != nil || in.Sub != "decrypt" || !slices.Equal(in.Pos, []string{"a"}) || !slices.Equal(in.Rest, []string{"b"}) {
		t.Errorf("%+v, %v", in, err)
	}
	for _, tc := range []struct {
		args      string
		argv      []string
		msg, hint string
	}{
		{Any, []string{"decrpt"}, "logs takes the subcommand decrypt or rotate", "did you mean 'prog logs decrypt'?"},
		{Any, nil, "logs takes the subcommand decrypt or rotate", "usage: prog logs decrypt"},
		{None, []string{"rotate", "x"}, "logs takes no arguments", "usage: prog logs"},
		{"LOG", []string{"rotate"}, "logs takes one LOG", "usage: prog logs"},
		{"LOG", []string{"rotate", "--profle", "x"}, "logs: flag provided but not defined: -profle", "did you mean --profile?"},
	} {
		fs, _, _ := newFS()
		_, err := Invoke("prog", d, fs, tc.args, tc.argv)
		u, ok := err.(*UsageError)
		if !ok || u.Msg != tc.msg || !strings.HasPrefix(u.Hint, tc.hint) {
			t.Errorf("%q: %#v, want %q %q", tc.argv, err, tc.msg, tc.hint)
		}
	}
	for _, argv := range [][]string{{"-h"}, {"decrypt", "--help"}} {
		if _, err := Invoke("prog", d, flag.NewFlagSet("logs", flag.ContinueOnError), Any, argv); err != ErrHelp {
			t.Errorf("%q: %v", argv, err)
		}
	}
	err = UnknownCommand("prog", "lgos", []Doc{d})
	if u, ok := err.(*UsageError); !ok || u.Msg != `no command "lgos"` || !strings.HasPrefix(u.Hint, "did you mean 'prog logs'?") {
		t.Errorf("%#v", err)
	}
}

// TestLoad: a help file is read from its directory and given the flags
// under each subcommand; a missing or misshapen one is an error with the
// name and flags kept.
func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{"help/logs.txt": {Data: []byte(logsHelp)}, "help/bad.txt": {Data: []byte("no usage\n")}}
	fs, _, _ := newFS()
	d, err := Load(fsys, "help", "prog", "logs", fs)
	if err != nil || d.Summary == "" || d.Flags["decrypt"] != fs || d.Flags["rotate"] != fs || len(d.Flags) != 2 {
		t.Errorf("%+v, %v", d, err)
	}
	for _, name := range []string{"bad", "none"} {
		d, err := Load(fsys, "help", "prog", name, fs)
		if err == nil || d.Name != name || d.Flags[""] != fs || d.Summary != "" {
			t.Errorf("%s: %+v, %v", name, d, err)
		}
	}
	var b strings.Builder
	Usage(&b, "prog", "does things", []Doc{d, {Name: "run", Summary: "runs"}})
	if want := "prog does things.\n\nUsage:\n  prog logs decrypt and verify a run's log\n  prog run  runs\n\nRun 'prog COMMAND --help' for a command's flags and an example.\n"; b.String() != want {
		t.Errorf("usage:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestRoff: text reaches roff as text: hyphens as \-, backslashes as \e,
// and a line that starts with a dot or a quote is not taken as a request.
func TestRoff(t *testing.T) {
	for in, want := range map[string]string{"--log-out": `\-\-log\-out`, `a\b`: `a\eb`, ".hidden": `\&.hidden`, "'x": `\&'x`, "plain": "plain"} {
		if got := roff(in); got != want {
			t.Errorf("roff(%q) = %q, want %q", in, got, want)
		}
	}
	var b strings.Builder
	manBody(&b, "Para one\ncontinues.\n\nExamples:\n  prog run x\n  prog run y\n")
	if want := ".PP\nPara one\ncontinues.\n.PP\nExamples:\n.RS\n.nf\nprog run x\nprog run y\n.fi\n.RE\n"; b.String() != want {
		t.Errorf("manBody:\n%s\nwant:\n%s", b.String(), want)
	}
}
