package main

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/internal/cmdline"
)

// TestUsageRulesNameRealFlags walks every command's usage rules: each
// names only flags the command defines, subcommands its help file has,
// Args that read, and a message, so that a misspelt name cannot leave a
// rule that never applies or always refuses.
func TestUsageRulesNameRealFlags(t *testing.T) {
	n := 0
	for _, c := range program().Commands {
		for i, r := range c.Rules {
			n++
			where := c.Name + " rule " + strconv.Itoa(i)
			for _, sub := range r.Subs {
				if !slices.Contains(c.Doc.Subcommands, sub) {
					t.Errorf("%s: %s has no subcommand %q", where, c.Name, sub)
				}
			}
			fs := c.Doc.Flags[""]
			if len(c.Doc.Subcommands) > 0 {
				fs = c.Doc.Flags[c.Doc.Subcommands[0]]
			}
			for _, names := range [][]string{r.If, r.Unless, r.Needs, r.Refuses} {
				for _, name := range names {
					if fs == nil || fs.Lookup(name) == nil {
						t.Errorf("%s: %s has no flag --%s", where, c.Name, name)
					}
				}
			}
			if _, _, ok := cmdline.ParseArgs(r.Args); r.Args != "" && !ok {
				t.Errorf("%s: Args %q do not read", where, r.Args)
			}
			if r.Msg == "" || strings.Contains(strings.ReplaceAll(r.Msg, "{sub}", ""), "{") {
				t.Errorf("%s: message %q", where, r.Msg)
			}
		}
	}
	if n == 0 {
		t.Fatal("no command has a usage rule")
	}
}
