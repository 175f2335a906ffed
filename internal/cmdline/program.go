package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
)

// Command is one command of a program, as data: its name, the flags it
// defines (Flags returns what runs with them once they are parsed, an A),
// the positional arguments it takes (Args: None, Any or the one it names),
// the shapes its command line must have besides (Rules), and its Doc,
// which LoadAll gives it. A command without Flags defines none and runs
// nothing of the program's: it is one of the machinery's own (Builtin).
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
		cs[i].define(fs)
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
	act := c.define(fs)
	in, err := Invoke(prog, c.Doc, fs, c.Args, argv)
	if err == nil {
		err = Check(prog, c.Doc, c.Rules, fs, in)
	}
	return act, in, err
}

// define declares c's flags on fs and returns what runs with them; a
// command without Flags has none and runs nothing (the zero A).
func (c Command[A]) define(fs *flag.FlagSet) (act A) {
	if c.Flags != nil {
		act = c.Flags(fs)
	}
	return act
}

// flagSet is a flag set for the command that reports its errors to the
// caller and prints nothing itself.
func (c Command[A]) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// Program is a command-line program as data: its name, what it is (Intro,
// as its overview and man page begin) and its commands, in the order its
// overview lists them, each with its Doc.
type Program[A any] struct {
	Name, Intro string
	Commands    []Command[A]
}

// NewProgram is the program name with the commands cs, each given its Doc
// from its help file dir/NAME.txt of fsys (LoadAll).
func NewProgram[A any](fsys fs.FS, dir, name, intro string, cs []Command[A]) Program[A] {
	return Program[A]{Name: name, Intro: intro, Commands: LoadAll(fsys, dir, name, cs)}
}

// ErrNoCommand is what Parse returns for a command line without a command.
var ErrNoCommand = errors.New("no command")

// Parse reads the program's command line args: the command args[0] names
// ("-h", "-help" and "--help" name help; "-version" and "--version"
// version), then its subcommand, flags and arguments (Command.Parse). It
// returns the command with what runs for it and its invocation; or
// ErrNoCommand; or ErrHelp with the command whose help was asked for; or
// a *UsageError.
func (p Program[A]) Parse(args []string) (Command[A], A, Invocation, error) {
	var act A
	if len(args) == 0 {
		return Command[A]{}, act, Invocation{}, ErrNoCommand
	}
	name := args[0]
	switch name {
	case "--version", "-version":
		name = "version"
	case "-h", "-help", "--help":
		name = "help"
	}
	c, err := Find(p.Name, p.Commands, name)
	if err != nil {
		return c, act, Invocation{}, err
	}
	act, in, err := c.Parse(p.Name, args[1:])
	return c, act, in, err
}

// Docs is the Doc of each of the program's commands, in order.
func (p Program[A]) Docs() []Doc { return Docs(p.Commands) }

// Help writes the overview (Usage) without names, or else the whole help
// (Doc.Text) of the command names[0]; a command the program does not have
// is UnknownCommand's error.
func (p Program[A]) Help(w io.Writer, names []string) error {
	if len(names) == 0 {
		Usage(w, p.Name, p.Intro, p.Docs())
		return nil
	}
	c, err := Find(p.Name, p.Commands, names[0])
	if err == nil {
		_, err = io.WriteString(w, c.Doc.Text())
	}
	return err
}

// Man writes the program's man page (Man).
func (p Program[A]) Man(w io.Writer) error { return Man(w, p.Name, p.Intro, p.Docs()) }

// Completion writes the program's completion script for shell (Completion).
func (p Program[A]) Completion(w io.Writer, shell string) error {
	return Completion(w, shell, p.Name, p.Docs())
}

// Builtin runs the machinery's own commands, those a program declares
// without Flags: "help" writes Help of the invocation's arguments, "man"
// the man page and "completion" the completion script of its subcommand,
// the shell. It returns false for a command it does not know. Help for a
// command the program does not have is a *UsageError; an error writing
// to w says what was being written.
func (p Program[A]) Builtin(name string, in Invocation, w io.Writer) (bool, error) {
	var err error
	switch name {
	case "help":
		return true, p.Help(w, in.Pos)
	case "man":
		if err = p.Man(w); err != nil {
			err = fmt.Errorf("writing the man page: %w", err)
		}
	case "completion":
		if err = p.Completion(w, in.Sub); err != nil {
			err = fmt.Errorf("writing the completion script: %w", err)
		}
	default:
		return false, nil
	}
	return true, err
}
