package shim

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// SyscallRule says, from a listed system call's six arguments, whether the filter
// allows it. The rules are MatchAll and PerArg; the set is closed, so that
// every rule is one the filter compiler knows how to check.
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

// seccomp_data offsets (linux/seccomp.h).
const (
	offNr    = 0
	offArch  = 4
	offArgs  = 16 // args[i] at offArgs+8*i, low 32 bits first (little-endian)
	maxJumps = 255
	maxInsns = 4096 // BPF_MAXINSNS
)

// check is one 32-bit comparison of the body of a PerArg rule.
type check struct {
	off         uint32
	mask, value uint32
}

// checks lays out the comparisons a PerArg rule needs, argument by
// argument, low half before high; a half the mask leaves out needs none.
func (p PerArg) checks(name string) ([]check, error) {
	var out []check
	for i, m := range p {
		if m == nil {
			continue
		}
		mask, value := m.maskValue()
		if value&^mask != 0 {
			return nil, fmt.Errorf("seccomp: %s: arg %d: value %#x has bits outside the mask %#x, so nothing would match", name, i, value, mask)
		}
		for half := 0; half < 2; half++ {
			mh, vh := uint32(mask>>(32*half)), uint32(value>>(32*half))
			if mh != 0 {
				out = append(out, check{off: uint32(offArgs + 8*i + 4*half), mask: mh, value: vh})
			}
		}
	}
	return out, nil
}

// insn is an instruction whose jumps name their targets: "" falls through
// to the next instruction, any other name is a label placed by mark.
type insn struct {
	code   uint16
	k      uint32
	jt, jf string
}

type assembler struct {
	prog   []insn
	labels map[string]int
}

func (a *assembler) stmt(code uint16, k uint32) { a.prog = append(a.prog, insn{code: code, k: k}) }

func (a *assembler) jump(code uint16, k uint32, jt, jf string) {
	a.prog = append(a.prog, insn{code: code, k: k, jt: jt, jf: jf})
}

func (a *assembler) mark(label string) { a.labels[label] = len(a.prog) }

// resolve turns label names into forward offsets; a label missing, behind
// the jump, or beyond a jump's reach is an error.
func (a *assembler) resolve() ([]unix.SockFilter, error) {
	if len(a.prog) > maxInsns {
		return nil, fmt.Errorf("seccomp: %d instructions is more than the kernel's %d", len(a.prog), maxInsns)
	}
	out := make([]unix.SockFilter, len(a.prog))
	for pc, in := range a.prog {
		out[pc] = unix.SockFilter{Code: in.code, K: in.k}
		if in.code&0x07 != unix.BPF_JMP {
			continue
		}
		var offs [2]uint8
		for i, l := range []string{in.jt, in.jf} {
			if l == "" {
				continue
			}
			at, ok := a.labels[l]
			if !ok {
				return nil, fmt.Errorf("seccomp: instruction %d jumps to %q, which is nowhere", pc, l)
			}
			off := at - pc - 1
			if off < 0 || off > maxJumps {
				return nil, fmt.Errorf("seccomp: instruction %d cannot jump %d to %q (a filter jumps forward at most %d)", pc, off, l, maxJumps)
			}
			offs[i] = uint8(off)
		}
		out[pc].Jt, out[pc].Jf = offs[0], offs[1]
	}
	return out, nil
}

// Compile assembles the filter for rules on the architecture arch (an
// AUDIT_ARCH_* value): a call of any other architecture is killed, a call
// rules answers gets its errno, a call rules allows with its arguments is
// allowed, and every other call gets deny (a SECCOMP_RET_* value). The
// calls are checked in increasing order of number, so the same rules give
// the same program, byte for byte. Layout:
//
//	ld arch; jeq arch ? next : kill; ld nr
//	jeq nr ? next : skip; ret errno   (each answered call)
//	jeq nr ? allow : next             (each call MatchAll allows)
//	jeq nr ? body : next              (each call a PerArg allows)
//	ret deny                          (not listed)
//	body: ld arg; [and mask]; jeq value ? next (the last: allow) : deny ...
//	deny: ret deny                    (if any PerArg)
//	allow: ret allow
//	kill: ret kill
func Compile(rules Rules, arch uint32, deny uint32) ([]unix.SockFilter, error) {
	var answered, plain, ruled []uintptr
	bodies := map[uintptr][]check{}
	for _, nr := range rules.Numbers() {
		s := rules[nr]
		if nr > 0xffffffff {
			return nil, fmt.Errorf("seccomp: %s: number %d does not fit the filter's 32 bits", s.Name, nr)
		}
		if s.Errno != 0 {
			if _, all := s.Rule.(MatchAll); s.Rule != nil && !all {
				return nil, fmt.Errorf("seccomp: %s is answered %s, whatever its arguments, yet has the rule %q", s.Name, unix.ErrnoName(s.Errno), s.Rule)
			}
			answered = append(answered, nr)
			continue
		}
		switch r := s.Rule.(type) {
		case MatchAll:
			plain = append(plain, nr)
		case PerArg:
			cs, err := r.checks(s.Name)
			if err != nil {
				return nil, err
			}
			if len(cs) == 0 {
				plain = append(plain, nr)
				continue
			}
			ruled = append(ruled, nr)
			bodies[nr] = cs
		default:
			return nil, fmt.Errorf("seccomp: %s (%d) has no rule: list it with MatchAll or PerArg, or leave it out", s.Name, nr)
		}
	}
	a := &assembler{labels: map[string]int{}}
	a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch)
	a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, arch, "", "kill")
	a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr)
	for _, nr := range answered {
		skip := fmt.Sprintf("after-answer-%d", nr)
		a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(nr), "", skip)
		a.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(rules[nr].Errno))
		a.mark(skip)
	}
	for _, nr := range plain {
		a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(nr), "allow", "")
	}
	for _, nr := range ruled {
		a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(nr), fmt.Sprintf("body-%d", nr), "")
	}
	a.stmt(unix.BPF_RET|unix.BPF_K, deny)
	for _, nr := range ruled {
		a.mark(fmt.Sprintf("body-%d", nr))
		cs := bodies[nr]
		for i, c := range cs {
			pass := ""
			if i == len(cs)-1 {
				pass = "allow"
			}
			a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, c.off)
			switch {
			case bits.OnesCount32(c.mask) == 1 && c.value == c.mask:
				a.jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, c.mask, pass, "deny")
			case bits.OnesCount32(c.mask) == 1 && c.value == 0:
				a.jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, c.mask, "deny", pass)
			default:
				if c.mask != 0xffffffff {
					a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, c.mask)
				}
				a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, c.value, pass, "deny")
			}
		}
	}
	if len(ruled) > 0 {
		a.mark("deny")
		a.stmt(unix.BPF_RET|unix.BPF_K, deny)
	}
	a.mark("allow")
	a.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW)
	a.mark("kill")
	a.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS)
	return a.resolve()
}
