package cmdline

import (
	"flag"
	"io"
	"io/fs"
)

// Command is one command of a program, as data: its name, the flags it
// defines (Flags returns what runs with them once they are parsed, an A),
// the positional arguments it takes (Args: None, Any or the one it names),
// the shapes its command line must have besides (Rules), and its Doc,
// which LoadAll gives it.
type Command[A any] struct {
	Name  string
	Flags func(fs *flag.FlagSet) A
	Args  string
	Rules []Rule
	Doc   Doc
}

// LoadAll gives each of cs its Doc: its help file dir/NAME.txt of fsys
// with the flags its Flags defines (Load). A file missing or misshapen
// leaves the Doc only its name and flags, which a program's test of its
// help files refuses.
func LoadAll[A any](fsys fs.FS, dir, prog string, cs []Command[A]) []Command[A] {
	for i := range cs {
		fs := cs[i].flagSet()
		cs[i].Flags(fs)
		cs[i].Doc, _ = Load(fsys, dir, prog, cs[i].Name, fs)
	}
	return cs
}

// Docs is the Doc of each of cs, in order.
func Docs[A any](cs []Command[A]) []Doc {
	docs := make([]Doc, len(cs))
	for i, c := range cs {
		docs[i] = c.Doc
	}
	return docs
}

// Find is the command of cs named name; none is UnknownCommand's error.
func Find[A any](prog string, cs []Command[A], name string) (Command[A], error) {
	for _, c := range cs {
		if c.Name == name {
			return c, nil
		}
	}
	return Command[A]{}, UnknownCommand(prog, name, Docs(cs))
}

// Parse reads the command line argv of c, of the program prog, on a flag
// set of its own: Invoke, then its Rules (Check). It returns what runs with
// the flags parsed and the invocation, or ErrHelp, or a *UsageError.
func (c Command[A]) Parse(prog string, argv []string) (A, Invocation, error) {
	fs := c.flagSet()
	act := c.Flags(fs)
	in, err := Invoke(prog, c.Doc, fs, c.Args, argv)
	if err == nil {
		err = Check(prog, c.Doc, c.Rules, fs, in)
	}
	return act, in, err
}

// flagSet is a flag set for the command that reports its errors to the
// caller and prints nothing itself.
func (c Command[A]) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}
