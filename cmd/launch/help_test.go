package main

import (
	"io/fs"
	"strings"
	"testing"
)

// TestHelpFiles: every command has a help file of the right shape, with
// a summary, a usage naming the command and an example, and every help
// file belongs to a command (so a file added without its row, or a row
// without its file, fails here).
func TestHelpFiles(t *testing.T) {
	files, err := fs.Glob(helpFiles, "help/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, c := range program().Commands {
		named["help/"+c.Name+".txt"] = true
		if c.Doc.Summary == "" || !strings.HasPrefix(c.Doc.Usage, c.Name) || !strings.Contains(c.Doc.Help, "Example") {
			t.Errorf("help/%s.txt: summary %q, usage %q: not a summary, a usage and an example", c.Name, c.Doc.Summary, c.Doc.Usage)
		}
	}
	for _, f := range files {
		if !named[f] {
			t.Errorf("%s belongs to no command", f)
		}
	}
	if len(files) != len(named) {
		t.Errorf("%d help files for %d commands", len(files), len(named))
	}
}

// TestHelpShowsFlags: a command's --help, and 'launch help COMMAND', show
// its help file and the flags it defines, the same text both ways; a
// command whose subcommands share their flags lists them once.
func TestHelpShowsFlags(t *testing.T) {
	for _, name := range []string{"run", "logs", "broker"} {
		h := launch(t, name, "--help")
		if h.code != 0 || !strings.Contains(h.stdout, "Usage: launch "+name) || !strings.Contains(h.stdout, "\nFlags:\n") {
			t.Errorf("%s --help: %+v", name, h)
		}
		if o := launch(t, "help", name); o.stdout != h.stdout {
			t.Errorf("help %s differs from %s --help:\n%s\n---\n%s", name, name, o.stdout, h.stdout)
		}
	}
	if h := launch(t, "run", "--help").stdout; !strings.Contains(h, "-profile string") || !strings.Contains(h, "-dir value") {
		t.Errorf("run --help lacks run's flags:\n%s", h)
	}
	if h := launch(t, "broker", "--help").stdout; strings.Count(h, "-db string") != 1 {
		t.Errorf("broker --help lists --db other than once:\n%s", h)
	}
	if h := launch(t, "logs", "decrypt", "--help").stdout; !strings.Contains(h, "-identity string") {
		t.Errorf("logs decrypt --help lacks --identity:\n%s", h)
	}
}
