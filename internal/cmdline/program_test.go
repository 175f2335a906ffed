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
