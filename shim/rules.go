package shim

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// SyscallRule says, from a listed system call's six arguments, whether the
// filter allows it. The rules are MatchAll and PerArg; the set is closed, so
// that every rule is one the filter compiler knows how to check.
type SyscallRule interface {
	// Matches reports whether the arguments satisfy the rule, exactly as
	// the compiled filter decides.
	Matches(args [6]uint64) bool
	// String describes the rule in words, for a reader of the allowlist.
	String() string
	isSyscallRule()
}

// MatchAll allows the call whatever its arguments.
type MatchAll struct{}

// Matches is always true.
func (MatchAll) Matches([6]uint64) bool { return true }

// String is "allowed".
func (MatchAll) String() string { return "allowed" }

func (MatchAll) isSyscallRule() {}

// PerArg allows the call only when every argument matches its matcher; a
// nil matcher (one left out of the literal) matches any value, as AnyValue.
type PerArg [6]ArgMatcher

// Matches reports whether each argument matches its matcher.
func (p PerArg) Matches(args [6]uint64) bool {
	for i, m := range p {
		if m != nil && !m.Matches(args[i]) {
			return false
		}
	}
	return true
}

// String is "allowed only if " and every condition on an argument, or
// "allowed" where no argument is constrained.
func (p PerArg) String() string {
	var conds []string
	for i, m := range p {
		if m == nil {
			continue
		}
		if mask, _ := m.maskValue(); mask == 0 {
			continue
		}
		conds = append(conds, fmt.Sprintf("arg %d %s", i, m))
	}
	if len(conds) == 0 {
		return "allowed"
	}
	return "allowed only if " + strings.Join(conds, " and ")
}

func (PerArg) isSyscallRule() {}

// ArgMatcher is a condition on one 64-bit argument: the argument's bits
// under a mask must equal a value. AnyValue, EqualTo, MaskedEqual and
// FlagsSet are the matchers.
type ArgMatcher interface {
	// Matches reports whether v satisfies the condition, exactly as the
	// compiled filter decides.
	Matches(v uint64) bool
	// String describes the condition in words, after "arg N".
	String() string
	maskValue() (mask, value uint64)
}

// AnyValue matches every value.
type AnyValue struct{}

// Matches is always true.
func (AnyValue) Matches(uint64) bool { return true }

// String is "is anything".
func (AnyValue) String() string { return "is anything" }

func (AnyValue) maskValue() (uint64, uint64) { return 0, 0 }

// EqualTo matches exactly one value, all 64 bits of it.
type EqualTo uint64

// Matches reports whether v is the value.
func (e EqualTo) Matches(v uint64) bool { return v == uint64(e) }

// String is "= 0x...".
func (e EqualTo) String() string { return fmt.Sprintf("= %#x", uint64(e)) }

func (e EqualTo) maskValue() (uint64, uint64) { return ^uint64(0), uint64(e) }

type maskedEqual struct {
	mask, value uint64
	name        string // FlagsSet's name for the bits
}

// MaskedEqual matches a value whose bits under mask equal value. A value
// with bits outside the mask matches nothing, and the filter compiler
// refuses it.
func MaskedEqual(mask, value uint64) ArgMatcher { return maskedEqual{mask: mask, value: value} }

// FlagsSet matches a value with every bit of flags set, whatever its other
// bits: MaskedEqual(flags, flags), described by name.
func FlagsSet(name string, flags uint64) ArgMatcher {
	return maskedEqual{mask: flags, value: flags, name: name}
}

func (m maskedEqual) Matches(v uint64) bool { return v&m.mask == m.value }

func (m maskedEqual) String() string {
	if m.name != "" {
		return fmt.Sprintf("has %s (%#x) set", m.name, m.mask)
	}
	return fmt.Sprintf("& %#x = %#x", m.mask, m.value)
}

func (m maskedEqual) maskValue() (uint64, uint64) { return m.mask, m.value }

// Syscall is the allowlist's entry for one system call, whose number is its
// key in Rules.
type Syscall struct {
	// Name is the call's name on this architecture.
	Name string
	// Rule says with which arguments the call is allowed. It must be set
	// unless Errno is.
	Rule SyscallRule
	// Errno, if set, is returned instead of running the call, whatever its
	// arguments and in every action: for a call whose arguments a filter
	// cannot inspect but whose caller has a fallback (glibc retries clone3
	// as clone on ENOSYS). Rule must then be nil or MatchAll.
	Errno unix.Errno
	// Why says who needs it.
	Why string
}

// Describe says in words what the filter does with the call: "answered
// ENOSYS", "allowed", or "allowed only if" its arguments' conditions.
func (s Syscall) Describe() string {
	if s.Errno != 0 {
		return "answered " + unix.ErrnoName(s.Errno)
	}
	if s.Rule == nil {
		return "refused (no rule)"
	}
	return s.Rule.String()
}

// Rules is a seccomp allowlist: each listed system call by number. Numbers
// absent from it get the filter's action.
type Rules map[uintptr]Syscall

// Numbers returns the listed numbers in increasing order, the order in
// which the filter checks them.
func (r Rules) Numbers() []uintptr {
	nrs := make([]uintptr, 0, len(r))
	for nr := range r {
		nrs = append(nrs, nr)
	}
	slices.Sort(nrs)
	return nrs
}

// Decide returns what a filter compiled from r with the given refusal
// answers for call nr with args on the rules' own architecture: the
// SECCOMP_RET_* value, as the kernel would see it.
func (r Rules) Decide(nr uintptr, args [6]uint64, deny uint32) uint32 {
	s, ok := r[nr]
	switch {
	case !ok:
		return deny
	case s.Errno != 0:
		return unix.SECCOMP_RET_ERRNO | uint32(s.Errno)
	case s.Rule != nil && s.Rule.Matches(args):
		return unix.SECCOMP_RET_ALLOW
	}
	return deny
}
