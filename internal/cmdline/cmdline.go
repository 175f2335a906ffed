// Package cmdline is the machinery of a command-line program with
// subcommands, driven by data: each command's help text (one file, the one
// source of its summary, usage and description) and its real flag sets.
// From them it parses flags interleaved with arguments, hints at the
// nearest name for a misspelled one, and writes the help, a man page and
// shell completion scripts, so that none of them can drift from another.
package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"text/tabwriter"

	"github.com/ampoule-run/ampoule/internal/suggest"
)

// Doc is one command as its help text and flag sets describe it.
type Doc struct {
	// Name is the command's name, as typed after the program's.
	Name string
	// Summary is the help text's first line: what the command does, in a
	// phrase.
	Summary string
	// Help is the text 'PROGRAM NAME --help' prints: the usage paragraph,
	// the description and the examples.
	Help string
	// Usage is the usage paragraph's synopses, each after the program's
	// name, the second and later on lines of their own indented as
	// "Usage: " is followed.
	Usage string
	// Subcommands are the words that follow Name in the synopses ("decrypt"
	// in "logs decrypt --identity ..."), in order, without repeats.
	Subcommands []string
	// Flags maps each subcommand ("" for a command without one) to the
	// flags it takes; set by the program, not by ParseHelp.
	Flags map[string]*flag.FlagSet
}

// ParseHelp reads a command's help text: its first line is the summary, a
// blank line, then the usage paragraph ("Usage: PROG NAME ...", further
// synopses on lines of their own beginning "       PROG NAME"), a blank
// line and the rest. It refuses text that does not have that shape, so
// that a help file cannot silently lose its usage.
func ParseHelp(prog, name, text string) (Doc, error) {
	summary, help, ok := strings.Cut(strings.TrimSpace(text), "\n\n")
	if !ok || strings.Contains(summary, "\n") || summary == "" {
		return Doc{}, fmt.Errorf("%s: the help text must start with a one-line summary and a blank line", name)
	}
	d := Doc{Name: name, Summary: summary, Help: help + "\n"}
	usage, _, _ := strings.Cut(help, "\n\n")
	prefix := "Usage: " + prog + " "
	for i, line := range strings.Split(usage, "\n") {
		synopsis, ok := strings.CutPrefix(line, prefix)
		if i > 0 {
			synopsis, ok = strings.CutPrefix(line, strings.Repeat(" ", len("Usage: "))+prog+" ")
		}
		words := strings.Fields(synopsis)
		if !ok || synopsis != name && !strings.HasPrefix(synopsis, name+" ") {
			return Doc{}, fmt.Errorf("%s: usage line %d is not %q followed by the command's name", name, i+1, prefix)
		}
		if len(words) > 1 && isWord(words[1]) && !contains(d.Subcommands, words[1]) {
			d.Subcommands = append(d.Subcommands, words[1])
		}
	}
	d.Usage = strings.TrimPrefix(usage, prefix)
	return d, nil
}

// isWord reports whether s is a subcommand's name: lower-case letters.
func isWord(s string) bool {
	for _, r := range s {
		if r < 'a' || r > 'z' {
			return false
		}
	}
	return s != ""
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ErrHelp is what Parse returns for -h, -help or --help.
var ErrHelp = flag.ErrHelp

// Parse parses flags interleaved with positional arguments, up to a "--"
// after which everything is returned in rest untouched. fs must report
// its errors to the caller (flag.ContinueOnError). -h returns ErrHelp.
func Parse(fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	for {
		if len(args) > 0 && args[0] == "--" {
			return pos, args[1:], nil
		}
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
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

// NearestFlag names the flag of fs nearest to the one err (from Parse)
// says is not defined, if there is one near enough.
func NearestFlag(fs *flag.FlagSet, err error) (string, bool) {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: ")
	if !ok || errors.Is(err, ErrHelp) {
		return "", false
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return suggest.Nearest(strings.TrimLeft(name, "-"), names)
}

// FlagDefaults is fs's flags as flag.PrintDefaults writes them, or "".
func FlagDefaults(fs *flag.FlagSet) string {
	if fs == nil {
		return ""
	}
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.PrintDefaults()
	fs.SetOutput(out)
	return b.String()
}

// Text is the command's whole help: its help text, then its flags, once
// per distinct flag set (a command whose subcommands take the same flags
// shows them once).
func (d Doc) Text() string {
	var b strings.Builder
	b.WriteString(d.Help)
	for _, g := range d.flagGroups() {
		fmt.Fprintf(&b, "\n%s\n%s", g.head, FlagDefaults(g.fs))
	}
	return b.String()
}

// flagGroup is a flag set and the heading it is shown under.
type flagGroup struct {
	head string
	fs   *flag.FlagSet
}

// flagGroups is the command's distinct, non-empty flag sets: "Flags:"
// when there is one, else each headed by the subcommands that take it.
func (d Doc) flagGroups() []flagGroup {
	var groups []flagGroup
	var subs [][]string
	for _, sub := range append([]string{""}, d.Subcommands...) {
		fs := d.Flags[sub]
		if fs == nil || FlagDefaults(fs) == "" {
			continue
		}
		i := 0
		for i < len(groups) && FlagDefaults(groups[i].fs) != FlagDefaults(fs) {
			i++
		}
		if i == len(groups) {
			groups, subs = append(groups, flagGroup{fs: fs}), append(subs, nil)
		}
		subs[i] = append(subs[i], sub)
	}
	for i := range groups {
		groups[i].head = "Flags:"
		if len(groups) > 1 {
			groups[i].head = "Flags of " + d.Name + " " + strings.Join(subs[i], ", ") + ":"
		}
	}
	return groups
}

// flagNames is the names of the flags the command takes under sub ("" for
// a command without subcommands), in order.
func (d Doc) flagNames(sub string) []string {
	var names []string
	if fs := d.Flags[sub]; fs != nil {
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	}
	return names
}

// dashed is a flag's name as typed: --name, or -n for a one-letter flag.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// unquote is the value name and usage of fs's flag name.
func unquote(fs *flag.FlagSet, name string) (string, string) {
	return flag.UnquoteUsage(fs.Lookup(name))
}

// Load reads the help file dir/NAME.txt of the command name from fsys
// (ParseHelp) and gives it the flags fs defines, the same under each of
// its subcommands. A missing or misshapen file is an error, with a Doc
// that has only the name and the flags.
func Load(fsys fs.FS, dir, prog, name string, flags *flag.FlagSet) (Doc, error) {
	d := Doc{Name: name}
	text, err := fs.ReadFile(fsys, dir+"/"+name+".txt")
	if err == nil {
		d, err = ParseHelp(prog, name, string(text))
	}
	if err != nil {
		d = Doc{Name: name}
	}
	d.Flags = map[string]*flag.FlagSet{}
	if len(d.Subcommands) == 0 {
		d.Flags[""] = flags
	}
	for _, sub := range d.Subcommands {
		d.Flags[sub] = flags
	}
	return d, err
}

// Usage writes the program's overview: what it is (intro), a line per
// command with its summary, and where each one's help is.
func Usage(w io.Writer, prog, intro string, docs []Doc) {
	fmt.Fprintf(w, "%s %s.\n\nUsage:\n", prog, intro)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	for _, d := range docs {
		fmt.Fprintf(tw, "  %s %s\t%s\n", prog, d.Name, d.Summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's flags and an example.\n", prog)
}
