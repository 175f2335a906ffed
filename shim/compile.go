package shim

import (
	"fmt"
	"math/bits"

	"golang.org/x/sys/unix"
)

// seccomp_data offsets (linux/seccomp.h).
const (
	offNr    = 0
	offArch  = 4
	offArgs  = 16 // args[i] at offArgs+8*i, low 32 bits first (little-endian)
	maxJumps = 255
	maxInsns = 4096 // BPF_MAXINSNS

	auditArchLE = 0x40000000 // __AUDIT_ARCH_LE (linux/audit.h)
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
	if arch&auditArchLE == 0 {
		return nil, fmt.Errorf("seccomp: architecture %#x is big-endian; the argument checks are laid out little-endian", arch)
	}
	k, err := sortRules(rules)
	if err != nil {
		return nil, err
	}
	a := &assembler{labels: map[string]int{}}
	a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch)
	a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, arch, "", "kill")
	a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr)
	for _, nr := range k.answered {
		skip := fmt.Sprintf("after-answer-%d", nr)
		a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(nr), "", skip)
		a.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(rules[nr].Errno))
		a.mark(skip)
	}
	for _, nr := range k.plain {
		a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(nr), "allow", "")
	}
	for _, nr := range k.ruled {
		a.jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(nr), fmt.Sprintf("body-%d", nr), "")
	}
	a.stmt(unix.BPF_RET|unix.BPF_K, deny)
	for _, nr := range k.ruled {
		a.mark(fmt.Sprintf("body-%d", nr))
		a.body(k.bodies[nr])
	}
	if len(k.ruled) > 0 {
		a.mark("deny")
		a.stmt(unix.BPF_RET|unix.BPF_K, deny)
	}
	a.mark("allow")
	a.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW)
	a.mark("kill")
	a.stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_KILL_PROCESS)
	return a.resolve()
}

// kinds is a rule set sorted for Compile: each kind of call by increasing
// number, and the argument checks of each call a PerArg allows.
type kinds struct {
	answered, plain, ruled []uintptr
	bodies                 map[uintptr][]check
}

// sortRules sorts rules into their kinds, refusing a row that cannot mean
// what it says: no rule, an answered call with an argument rule, a number
// beyond 32 bits, a value outside its mask.
func sortRules(rules Rules) (kinds, error) {
	k := kinds{bodies: map[uintptr][]check{}}
	for _, nr := range rules.Numbers() {
		s := rules[nr]
		if nr > 0xffffffff {
			return k, fmt.Errorf("seccomp: %s: number %d does not fit the filter's 32 bits", s.Name, nr)
		}
		if s.Errno != 0 {
			if _, all := s.Rule.(MatchAll); s.Rule != nil && !all {
				return k, fmt.Errorf("seccomp: %s is answered %s, whatever its arguments, yet has the rule %q", s.Name, unix.ErrnoName(s.Errno), s.Rule)
			}
			k.answered = append(k.answered, nr)
			continue
		}
		switch r := s.Rule.(type) {
		case MatchAll:
			k.plain = append(k.plain, nr)
		case PerArg:
			cs, err := r.checks(s.Name)
			if err != nil {
				return k, err
			}
			if len(cs) == 0 {
				k.plain = append(k.plain, nr)
				continue
			}
			k.ruled = append(k.ruled, nr)
			k.bodies[nr] = cs
		default:
			return k, fmt.Errorf("seccomp: %s (%d) has no rule: list it with MatchAll or PerArg, or leave it out", s.Name, nr)
		}
	}
	return k, nil
}

// body emits the checks of one PerArg rule: each passes to the next, the
// last to allow, and any that fails jumps to deny. A single bit is tested
// with jset, either way; anything else is masked (unless the whole word
// counts) and compared.
func (a *assembler) body(cs []check) {
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
