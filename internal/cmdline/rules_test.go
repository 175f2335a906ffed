package cmdline

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestCheck: each rule applies only under its subcommands and its If and
// Unless flags, and a command line it applies to is refused with its
// message ({sub} filled in) and hint, the usage when it has none, unless
// it has the rule's arguments and flags; the first rule broken is the one
// reported, and a flag at its default counts as unset.
func TestCheck(t *testing.T) {
	d, _ := ParseHelp("prog", "logs", logsHelp)
	rules := []Rule{
		{If: []string{"y"}, Refuses: []string{"o"}, Msg: "logs takes -o or -y, not both"},
		{Subs: []string{"decrypt"}, Args: "0-1", Needs: []string{"identity"}, Msg: "logs {sub} needs --identity and at most one LOG"},
		{Subs: []string{"rotate"}, Unless: []string{"all"}, Args: "1", Msg: "logs rotate takes one LOG", Hint: "or --all"},
	}
	for _, tc := range []struct {
		in        Invocation
		flags     []string
		msg, hint string
	}{
		{Invocation{Sub: "decrypt"}, []string{"--identity", "id"}, "", ""},
		{Invocation{Sub: "decrypt", Pos: []string{"a"}}, []string{"--identity", "id"}, "", ""},
		{Invocation{Sub: "decrypt", Pos: []string{"a", "b"}}, []string{"--identity", "id"}, "logs decrypt needs --identity and at most one LOG", "usage: prog logs decrypt"},
		{Invocation{Sub: "decrypt", Rest: []string{"b"}}, []string{"--identity", "id"}, "logs decrypt needs --identity and at most one LOG", "usage: prog logs"},
		{Invocation{Sub: "decrypt"}, nil, "logs decrypt needs --identity and at most one LOG", "usage: prog logs"},
		{Invocation{Sub: "decrypt"}, []string{"--identity", ""}, "logs decrypt needs --identity and at most one LOG", "usage: prog logs"},
		{Invocation{Sub: "decrypt"}, []string{"--identity", "id", "-y", "k", "-o", "f"}, "logs takes -o or -y, not both", "usage: prog logs"},
		{Invocation{Sub: "decrypt"}, []string{"--identity", "id", "-o", "f"}, "", ""},
		{Invocation{Sub: "rotate"}, nil, "logs rotate takes one LOG", "or --all"},
		{Invocation{Sub: "rotate"}, []string{"--all"}, "", ""},
		{Invocation{Sub: "rotate", Pos: []string{"a"}}, nil, "", ""},
	} {
		fs := flag.NewFlagSet("logs", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("identity", "", "")
		fs.String("o", "", "")
		fs.String("y", "", "")
		fs.Bool("all", false, "")
		if err := fs.Parse(tc.flags); err != nil {
			t.Fatal(err)
		}
		err := Check("prog", d, rules, fs, tc.in)
		if tc.msg == "" {
			if err != nil {
				t.Errorf("%+v %q: %v", tc.in, tc.flags, err)
			}
			continue
		}
		u, ok := err.(*UsageError)
		if !ok || u.Msg != tc.msg || !strings.HasPrefix(u.Hint, tc.hint) {
			t.Errorf("%+v %q: %#v, want %q %q", tc.in, tc.flags, err, tc.msg, tc.hint)
		}
	}
}

// TestParseArgs: "N" and "N-M" are read; anything else is refused, and a
// rule with such Args fits no command line.
func TestParseArgs(t *testing.T) {
	for s, want := range map[string][3]int{"0": {0, 0, 1}, "2": {2, 2, 1}, "0-1": {0, 1, 1}, "x": {}, "2-1": {}, "-1": {}, "1-": {}} {
		lo, hi, ok := ParseArgs(s)
		if got := [3]int{lo, hi, map[bool]int{true: 1}[ok]}; ok != (want[2] == 1) || ok && got != want {
			t.Errorf("ParseArgs(%q) = %d, %d, %v", s, lo, hi, ok)
		}
	}
	if (Rule{Args: "x"}).fits(Invocation{}, nil) {
		t.Error("a rule with Args \"x\" fits")
	}
}
