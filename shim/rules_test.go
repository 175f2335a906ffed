package shim

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite the golden seccomp programs in testdata")

// listing prints a program one instruction a line: code, jt, jf, k.
func listing(prog []unix.SockFilter) string {
	var b strings.Builder
	for _, in := range prog {
		fmt.Fprintf(&b, "%#04x %d %d %#08x\n", in.Code, in.Jt, in.Jf, in.K)
	}
	return b.String()
}

// TestProgramGolden holds the runner's filter to the program committed in
// testdata, instruction for instruction: the rules compile to the filter
// the positional allowlist assembled before them, and any change to the
// allowlist or the compiler shows as a reviewed change of these files
// (go test ./shim -run TestProgramGolden -update rewrites them).
func TestProgramGolden(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the golden programs are amd64's")
	}
	for name, action := range map[string]SeccompAction{"errno": SeccompErrno, "kill": SeccompKill} {
		prog, err := Program(action)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join("testdata", "seccomp_amd64_"+name+".golden")
		if *update {
			if err := os.WriteFile(file, []byte(listing(prog)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := listing(prog); got != string(want) {
			t.Errorf("%v: the program is not %s:\n%s", action, file, got)
		}
	}
}

// testRules exercises every rule and matcher, several argument rules at once
// and answered calls, on numbers chosen to interleave.
func testRules() Rules {
	return Rules{
		0:   {Name: "plain0", Rule: MatchAll{}, Why: "test"},
		3:   {Name: "answered3", Errno: unix.ENOSYS, Why: "test"},
		5:   {Name: "flags5", Rule: PerArg{FlagsSet("BIT16", 1<<16)}, Why: "test"},
		7:   {Name: "equal7", Rule: PerArg{nil, EqualTo(0x1_0000_0003)}, Why: "test"},
		9:   {Name: "masked9", Rule: PerArg{MaskedEqual(0xff, 0x12), nil, MaskedEqual(1<<33, 0)}, Why: "test"},
		11:  {Name: "plain11", Rule: MatchAll{}, Why: "test"},
		13:  {Name: "answered13", Rule: MatchAll{}, Errno: unix.EACCES, Why: "test"},
		17:  {Name: "clear17", Rule: PerArg{AnyValue{}, MaskedEqual(1<<4, 0), EqualTo(0), nil, nil, FlagsSet("HIGH", 1<<63)}, Why: "test"},
		19:  {Name: "unconstrained19", Rule: PerArg{AnyValue{}, nil, MaskedEqual(0, 0)}, Why: "test"},
		400: {Name: "plain400", Rule: MatchAll{}, Why: "test"},
	}
}

// nearby returns a value that matches m, or just misses it, or is random.
func nearby(r *rand.Rand, m ArgMatcher) uint64 {
	mask, value := uint64(0), uint64(0)
	if m != nil {
		mask, value = m.maskValue()
	}
	v := value | r.Uint64()&^mask // matches
	switch r.IntN(4) {
	case 0:
		v ^= 1 << r.IntN(64) // one bit off, in or out of the mask
	case 1:
		v = r.Uint64()
	case 2:
		v = value
	}
	return v
}

// TestCompileDecidesAsTheRules runs programs compiled from rules of every
// kind over calls near and off their conditions, and holds each answer to
// what the rules themselves decide: the compiled checks (both halves of a
// 64-bit argument, masks, single-bit tests either way) mean what the rules
// say.
func TestCompileDecidesAsTheRules(t *testing.T) {
	rules := testRules()
	const arch = unix.AUDIT_ARCH_X86_64
	for _, deny := range []uint32{unix.SECCOMP_RET_KILL_PROCESS, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)} {
		prog, err := Compile(rules, arch, deny)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		counts := map[uint32]int{}
		for i := 0; i < 20000; i++ {
			nr := uintptr(r.IntN(21))
			if i%50 == 0 {
				nr = 400
			}
			var m PerArg
			if s, ok := rules[nr]; ok {
				if p, ok := s.Rule.(PerArg); ok {
					m = p
				}
			}
			var args [6]uint64
			for a := range args {
				args[a] = nearby(r, m[a])
			}
			got, err := runBPF(prog, seccompData{nr: int32(nr), arch: arch, args: args})
			if err != nil {
				t.Fatal(err)
			}
			if want := rules.Decide(nr, args, deny); got != want {
				t.Fatalf("deny %#x: nr %d args %#x: the program says %#x, the rules %#x", deny, nr, args, got, want)
			}
			counts[got]++
			if nr == 7 || nr == 9 || nr == 17 || nr == 5 {
				counts[uint32(nr)<<8|got&0xff]++
			}
		}
		// Every answer was reached, and every argument rule both allowed
		// and refused: the draw above did test something.
		for _, want := range []uint32{unix.SECCOMP_RET_ALLOW, deny, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS), unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)} {
			if counts[want] == 0 {
				t.Errorf("deny %#x: no call was answered %#x", deny, want)
			}
		}
		for _, nr := range []uint32{5, 7, 9, 17} {
			if counts[nr<<8|unix.SECCOMP_RET_ALLOW&0xff] == 0 || counts[nr<<8|deny&0xff] == 0 {
				t.Errorf("call %d was not both allowed and refused: %v", nr, counts)
			}
		}
		for _, other := range []uint32{unix.AUDIT_ARCH_I386, 0} {
			if got, _ := runBPF(prog, seccompData{nr: 0, arch: other}); got != unix.SECCOMP_RET_KILL_PROCESS {
				t.Errorf("arch %#x: %#x, want kill", other, got)
			}
		}
	}
}

// TestCompileChecksEdges pins the answers at each condition's edge, where a
// check of the wrong half or the wrong polarity would show.
func TestCompileChecksEdges(t *testing.T) {
	rules := testRules()
	const arch, deny = unix.AUDIT_ARCH_X86_64, unix.SECCOMP_RET_KILL_PROCESS
	prog, err := Compile(rules, arch, deny)
	if err != nil {
		t.Fatal(err)
	}
	const allow = unix.SECCOMP_RET_ALLOW
	for _, c := range []struct {
		nr   int32
		args [6]uint64
		want uint32
	}{
		{5, [6]uint64{1 << 16}, allow},
		{5, [6]uint64{^uint64(1 << 16)}, deny},
		{7, [6]uint64{0, 0x1_0000_0003}, allow},
		{7, [6]uint64{0, 0x3}, deny},           // low half alone
		{7, [6]uint64{0, 0x1_0000_0000}, deny}, // high half alone
		{7, [6]uint64{0x1_0000_0003, 0}, deny}, // the wrong argument
		{9, [6]uint64{0xff12, 0, 0}, allow},
		{9, [6]uint64{0x13, 0, 0}, deny},
		{9, [6]uint64{0x12, 0, 1 << 33}, deny},
		{9, [6]uint64{0x12, 0, 1<<32 | 1<<34}, allow},
		{17, [6]uint64{7, 0, 0, 9, 9, 1 << 63}, allow},
		{17, [6]uint64{7, 1 << 4, 0, 9, 9, 1 << 63}, deny},
		{17, [6]uint64{7, 0, 1 << 32, 9, 9, 1 << 63}, deny},
		{17, [6]uint64{7, 0, 0, 9, 9, 1 << 62}, deny},
		{19, [6]uint64{1, 2, 3, 4, 5, 6}, allow},
		{3, [6]uint64{}, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{13, [6]uint64{}, unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)},
		{400, [6]uint64{}, allow},
		{1, [6]uint64{}, deny},
		{399, [6]uint64{}, deny},
	} {
		got, err := runBPF(prog, seccompData{nr: c.nr, arch: arch, args: c.args})
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("nr %d args %#x: %#x, want %#x", c.nr, c.args, got, c.want)
		}
	}
}

// TestProgramIsDeterministic compiles the same rules many times, each map
// iterated in its own random order: the program must not change, and its
// calls are checked in increasing order of number.
func TestProgramIsDeterministic(t *testing.T) {
	first, err := Compile(testRules(), unix.AUDIT_ARCH_X86_64, unix.SECCOMP_RET_KILL_PROCESS)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		again, err := Compile(testRules(), unix.AUDIT_ARCH_X86_64, unix.SECCOMP_RET_KILL_PROCESS)
		if err != nil || !slices.Equal(again, first) {
			t.Fatalf("build %d differs from the first (%v):\n%s\nwant\n%s", i, err, listing(again), listing(first))
		}
	}
	if _, err := Allowlist(); err != nil {
		t.Skip(err)
	}
	prog, _ := Program(SeccompKill)
	for i := 0; i < 50; i++ {
		again, err := Program(SeccompKill)
		if err != nil || !slices.Equal(again, prog) {
			t.Fatalf("build %d of the runner's filter differs from the first (%v)", i, err)
		}
	}
	// After ld nr come the answered calls, then those allowed whatever
	// their arguments, then those with argument rules, each kind by
	// increasing number, up to the first ret.
	allowAt := len(prog) - 2
	var last uint32
	kind, begun := 0, false
	for pc := 3; prog[pc].Code != unix.BPF_RET|unix.BPF_K; pc++ {
		in := prog[pc]
		k := 2
		switch {
		case in.Jt == 0 && in.Jf == 1:
			k = 0
			pc++ // its ret errno
		case pc+1+int(in.Jt) == allowAt:
			k = 1
		}
		if begun && (k < kind || k == kind && in.K <= last) {
			t.Fatalf("call %d (kind %d) is checked after %d (kind %d)", in.K, k, last, kind)
		}
		kind, last, begun = k, in.K, true
	}
}

// TestCompileRefuses: a row the compiler cannot make mean what it says is
// an error, never a filter that allows more (or less) than the rows.
func TestCompileRefuses(t *testing.T) {
	many := Rules{}
	for nr := uintptr(0); nr < 300; nr++ {
		many[nr] = Syscall{Name: fmt.Sprint(nr), Rule: MatchAll{}, Why: "test"}
	}
	many[1000] = Syscall{Name: "ruled", Rule: PerArg{EqualTo(1)}, Why: "test"}
	for _, c := range []struct {
		name  string
		rules Rules
		want  string
	}{
		{"no rule", Rules{1: {Name: "write", Why: "test"}}, "write (1) has no rule"},
		{"impossible mask", Rules{1: {Name: "write", Rule: PerArg{nil, MaskedEqual(0xf0, 0x1)}, Why: "test"}}, "outside the mask"},
		{"answered with a rule", Rules{1: {Name: "write", Errno: unix.ENOSYS, Rule: PerArg{EqualTo(1)}, Why: "test"}}, "whatever its arguments"},
		{"number beyond 32 bits", Rules{1 << 32: {Name: "huge", Rule: MatchAll{}, Why: "test"}}, "does not fit"},
		{"too far to jump", many, "cannot jump"},
	} {
		_, err := Compile(c.rules, unix.AUDIT_ARCH_X86_64, unix.SECCOMP_RET_KILL_PROCESS)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	for _, arch := range []uint32{unix.AUDIT_ARCH_S390X, unix.AUDIT_ARCH_PPC64} {
		_, err := Compile(testRules(), arch, unix.SECCOMP_RET_KILL_PROCESS)
		if err == nil || !strings.Contains(err.Error(), "big-endian") {
			t.Errorf("arch %#x: %v, want the big-endian layout refused", arch, err)
		}
	}
	for _, arch := range []uint32{unix.AUDIT_ARCH_AARCH64, unix.AUDIT_ARCH_I386} {
		if _, err := Compile(testRules(), arch, unix.SECCOMP_RET_KILL_PROCESS); err != nil {
			t.Errorf("arch %#x, little-endian: %v", arch, err)
		}
	}
	for _, action := range []SeccompAction{SeccompOff, SeccompAction(7)} {
		if _, err := Program(action); err == nil || !strings.Contains(err.Error(), "no filter program") {
			t.Errorf("Program(%v): %v, want an error", action, err)
		}
	}
	huge := Rules{}
	for nr := uintptr(0); nr < 5000; nr++ {
		huge[nr] = Syscall{Name: fmt.Sprint(nr), Errno: unix.ENOSYS, Why: "test"}
	}
	if _, err := Compile(huge, unix.AUDIT_ARCH_X86_64, unix.SECCOMP_RET_KILL_PROCESS); err == nil || !strings.Contains(err.Error(), "instructions is more than") {
		t.Errorf("10,000 instructions: %v", err)
	}
}

// TestDescribe: each row of the allowlist is described in words, for
// 'launch audit' and its readers.
func TestDescribe(t *testing.T) {
	if _, err := Allowlist(); err != nil {
		t.Skip(err)
	}
	for nr, want := range map[uintptr]string{
		unix.SYS_CLONE:  "allowed only if arg 0 has CLONE_THREAD (0x10000) set",
		unix.SYS_CLONE3: "answered ENOSYS",
		unix.SYS_READ:   "allowed",
		unix.SYS_SOCKET: "refused",
		unix.SYS_EXECVE: "refused",
	} {
		if got := Describe(nr); got != want {
			t.Errorf("Describe(%d) = %q, want %q", nr, got, want)
		}
	}
	for rule, want := range map[SyscallRule]string{
		MatchAll{}:                            "allowed",
		PerArg{}:                              "allowed",
		PerArg{AnyValue{}, MaskedEqual(0, 0)}: "allowed",
		PerArg{nil, EqualTo(3)}:               "allowed only if arg 1 = 0x3",
		PerArg{MaskedEqual(0xff, 0x12), nil, EqualTo(0)}: "allowed only if arg 0 & 0xff = 0x12 and arg 2 = 0x0",
	} {
		if got := rule.String(); got != want {
			t.Errorf("%#v: %q, want %q", rule, got, want)
		}
	}
	if got := (Syscall{Name: "x"}).Describe(); got != "refused (no rule)" {
		t.Errorf("a row without a rule: %q", got)
	}
}

// fuzzRules reads a small rule set and one call from b: per entry a number
// byte and a kind byte (answered, MatchAll, or PerArg with up to three
// matchers, each an argument, a kind and 16 bytes of mask and value); then
// the call's number and six arguments. Missing bytes read as zero.
func fuzzRules(b []byte) (Rules, int32, [6]uint64) {
	next := func() byte {
		if len(b) == 0 {
			return 0
		}
		c := b[0]
		b = b[1:]
		return c
	}
	u64 := func() uint64 {
		var v uint64
		for i := 0; i < 8; i++ {
			v = v<<8 | uint64(next())
		}
		return v
	}
	rules := Rules{}
	for n := int(next() % 9); n > 0; n-- {
		nr := uintptr(next() % 32)
		switch kind := next(); kind % 3 {
		case 0:
			rules[nr] = Syscall{Name: "answered", Errno: unix.Errno(kind/3%40 + 1), Why: "fuzz"}
		case 1:
			rules[nr] = Syscall{Name: "plain", Rule: MatchAll{}, Why: "fuzz"}
		default:
			var p PerArg
			for m := int(kind / 3 % 4); m > 0; m-- {
				arg, mk := next()%6, next()
				mask, value := u64(), u64()
				switch mk % 4 {
				case 0:
					p[arg] = EqualTo(value)
				case 1:
					p[arg] = MaskedEqual(mask, value&mask)
				case 2:
					p[arg] = FlagsSet("F", mask)
				default:
					p[arg] = AnyValue{}
				}
			}
			rules[nr] = Syscall{Name: "ruled", Rule: p, Why: "fuzz"}
		}
	}
	nr := int32(next() % 40)
	var args [6]uint64
	for i := range args {
		args[i] = u64()
	}
	return rules, nr, args
}

// FuzzCompileDecides compiles fuzzed rule sets and runs the program over a
// fuzzed call: it must compile, run to an answer within the kernel's
// limits, and answer what the rules decide.
func FuzzCompileDecides(f *testing.F) {
	f.Add([]byte{1, 5, 2, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 1, 0, 0})
	f.Add([]byte{3, 1, 0, 2, 1, 3, 11, 4, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0, 0, 0, 1, 0, 0, 0, 3, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		rules, nr, args := fuzzRules(b)
		for _, deny := range []uint32{unix.SECCOMP_RET_KILL_PROCESS, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)} {
			prog, err := Compile(rules, unix.AUDIT_ARCH_X86_64, deny)
			if err != nil {
				t.Fatalf("%v: %v", rules, err)
			}
			got, err := runBPF(prog, seccompData{nr: nr, arch: unix.AUDIT_ARCH_X86_64, args: args})
			if err != nil {
				t.Fatalf("%v: %v\n%s", rules, err, listing(prog))
			}
			if want := rules.Decide(uintptr(nr), args, deny); got != want {
				t.Fatalf("rules %v, nr %d args %#x: the program says %#x, the rules %#x\n%s", rules, nr, args, got, want, listing(prog))
			}
		}
	})
}
