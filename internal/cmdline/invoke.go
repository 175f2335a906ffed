package cmdline

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/ampoule-run/ampoule/internal/suggest"
)

// UsageError is a command line the program cannot take: what is wrong,
// and a hint (the usage, or the nearest name it has).
type UsageError struct{ Msg, Hint string }

func (e *UsageError) Error() string { return e.Msg }

// Invocation is a command's parsed command line: its subcommand ("" for a
// command without), its positional arguments and those after "--".
type Invocation struct {
	Sub       string
	Pos, Rest []string
}

// Args says which positional arguments a command takes: None, Any (the
// command checks them itself), or else exactly one, named by the value
// ("BUNDLE").
const (
	None = ""
	Any  = "*"
)

// Invoke parses the command line args of the command d, of the program
// prog: its subcommand first if it has any, then the flags of fs
// interleaved with arguments as Parse does, which must be as many as
// args says. -h anywhere before the arguments is ErrHelp; anything else
// wrong a *UsageError.
func Invoke(prog string, d Doc, fs *flag.FlagSet, args string, argv []string) (Invocation, error) {
	var in Invocation
	usage := "usage: " + prog + " " + d.Usage
	if subs := d.Subcommands; len(subs) > 0 {
		switch {
		case len(argv) > 0 && contains(subs, argv[0]):
			in.Sub, argv = argv[0], argv[1:]
		case len(argv) > 0 && (argv[0] == "-h" || argv[0] == "-help" || argv[0] == "--help"):
			return in, ErrHelp
		default:
			hint := usage
			if len(argv) > 0 {
				if near, ok := suggest.Nearest(argv[0], subs); ok {
					hint = fmt.Sprintf("did you mean '%s %s %s'? %s", prog, d.Name, near, hint)
				}
			}
			return in, &UsageError{fmt.Sprintf("%s takes the subcommand %s", d.Name, orList(subs)), hint}
		}
	}
	var err error
	if in.Pos, in.Rest, err = Parse(fs, argv); errors.Is(err, ErrHelp) {
		return in, ErrHelp
	} else if err != nil {
		hint := fmt.Sprintf("run '%s %s --help'; the workload's own arguments go after --", prog, d.Name)
		if near, ok := NearestFlag(fs, err); ok {
			hint = fmt.Sprintf("did you mean --%s? %s", near, hint)
		}
		return in, &UsageError{fmt.Sprintf("%s: %v", d.Name, err), hint}
	}
	switch {
	case args == None && len(in.Pos)+len(in.Rest) > 0:
		return in, &UsageError{d.Name + " takes no arguments", usage}
	case args != None && args != Any && (len(in.Pos) != 1 || len(in.Rest) > 0):
		return in, &UsageError{fmt.Sprintf("%s takes one %s", d.Name, args), usage}
	}
	return in, nil
}

// UnknownCommand is the error for a command the program does not have,
// naming the nearest of docs' if one is near.
func UnknownCommand(prog, name string, docs []Doc) error {
	hint := fmt.Sprintf("run '%s help' to list the commands", prog)
	if near, ok := suggest.Nearest(name, names(docs)); ok {
		hint = fmt.Sprintf("did you mean '%s %s'? %s", prog, near, hint)
	}
	return &UsageError{fmt.Sprintf("no command %q", name), hint}
}

// orList is "a", "a or b", "a, b or c".
func orList(words []string) string {
	if n := len(words); n > 1 {
		return strings.Join(words[:n-1], ", ") + " or " + words[n-1]
	}
	return strings.Join(words, "")
}
