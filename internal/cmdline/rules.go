package cmdline

import (
	"flag"
	"strconv"
	"strings"
)

// Rule is one shape a command line must have, as data: where it applies
// (its subcommands, and the flags that must or must not be set for it to
// apply), and what it then wants (a count of positional arguments, flags
// set, flags not set). A command line that it applies to and that does not
// have the shape is refused with Msg, in which {sub} stands for the
// subcommand, and Hint (default: the usage).
type Rule struct {
	// Subs are the subcommands the rule applies to; none: every one.
	Subs []string
	// If are flags of which one must be set for the rule to apply; none:
	// it applies whatever is set. Unless are flags of which none must be.
	If, Unless []string
	// Args is how many positional arguments it wants: "" any, "N" exactly
	// N, "N-M" N to M; then none after "--" either.
	Args string
	// Needs are the flags that must be set; Refuses those that must not.
	Needs, Refuses []string
	Msg, Hint      string
}

// Check returns the first of rules that the command line in, with the
// flags fs parsed, does not satisfy, as a *UsageError; nil if it fits
// them all. A flag counts as set when its value is not its default (so
// --db "" is no database). prog and d give the default hint, the
// command's usage.
func Check(prog string, d Doc, rules []Rule, fs *flag.FlagSet, in Invocation) error {
	set := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { set[f.Name] = f.Value.String() != f.DefValue })
	for _, r := range rules {
		if !r.applies(in.Sub, set) || r.fits(in, set) {
			continue
		}
		hint := r.Hint
		if hint == "" {
			hint = "usage: " + prog + " " + d.Usage
		}
		return &UsageError{strings.ReplaceAll(r.Msg, "{sub}", in.Sub), hint}
	}
	return nil
}

// applies reports whether the rule holds for the subcommand sub with the
// flags set.
func (r Rule) applies(sub string, set map[string]bool) bool {
	if len(r.Subs) > 0 && !contains(r.Subs, sub) {
		return false
	}
	if len(r.If) > 0 && !anySet(r.If, set) {
		return false
	}
	return !anySet(r.Unless, set)
}

// fits reports whether the command line has the rule's shape.
func (r Rule) fits(in Invocation, set map[string]bool) bool {
	for _, name := range r.Needs {
		if !set[name] {
			return false
		}
	}
	if anySet(r.Refuses, set) {
		return false
	}
	if r.Args == "" {
		return true
	}
	lo, hi, ok := ParseArgs(r.Args)
	return ok && len(in.Rest) == 0 && lo <= len(in.Pos) && len(in.Pos) <= hi
}

// ParseArgs reads a Rule's Args, "N" or "N-M": the fewest and most
// positional arguments it admits; ok false for anything else, which no
// command line fits.
func ParseArgs(s string) (lo, hi int, ok bool) {
	a, b, ranged := strings.Cut(s, "-")
	lo, err := strconv.Atoi(a)
	if err != nil || lo < 0 {
		return 0, 0, false
	}
	if !ranged {
		return lo, lo, true
	}
	hi, err = strconv.Atoi(b)
	return lo, hi, err == nil && hi >= lo
}

func anySet(names []string, set map[string]bool) bool {
	for _, name := range names {
		if set[name] {
			return true
		}
	}
	return false
}
