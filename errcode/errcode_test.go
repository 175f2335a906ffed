package errcode

import (
	"errors"
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestRegistry walks the table: numbers unique and in their class's range,
// names unique and kebab-case, texts present and free of format verbs.
func TestRegistry(t *testing.T) {
	names := map[string]Code{}
	nums := map[Code]bool{}
	kebab := regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)
	rangeOf := map[int]Class{1: ClassUsage, 2: ClassWorkload, 3: ClassPolicy, 4: ClassLimit, 5: ClassInternal}
	for _, e := range registry {
		if nums[e.code] {
			t.Errorf("E%04d registered twice", e.code)
		}
		nums[e.code] = true
		if prev, ok := names[e.name]; ok {
			t.Errorf("name %q used by E%04d and E%04d", e.name, prev, e.code)
		}
		names[e.name] = e.code
		if !kebab.MatchString(e.name) {
			t.Errorf("E%04d: name %q is not kebab-case", e.code, e.name)
		}
		if e.text == "" || strings.ContainsAny(e.text, "%\n") {
			t.Errorf("E%04d: text %q must be one plain line", e.code, e.text)
		}
		want := rangeOf[int(e.code)/1000]
		if e.class != want && !(e.code == Interrupted && e.class == ClassInterrupted) {
			t.Errorf("E%04d: class %v, want %v for its number range", e.code, e.class, want)
		}
	}
	if got := len(All()); got != len(registry) {
		t.Errorf("All() has %d codes, registry %d", got, len(registry))
	}
	all := All()
	for i := 1; i < len(all); i++ {
		if all[i-1] >= all[i] {
			t.Errorf("All() not sorted at %d", i)
		}
	}
}

func TestClassesAreDistinct(t *testing.T) {
	seen := map[int]Class{}
	for _, c := range Classes() {
		if p, ok := seen[c.ExitStatus()]; ok {
			t.Errorf("%v and %v share exit status %d", p, c, c.ExitStatus())
		}
		seen[c.ExitStatus()] = c
		if strings.HasPrefix(c.String(), "class(") {
			t.Errorf("class %d has no name", int(c))
		}
	}
}

func TestFormatting(t *testing.T) {
	secret := "tenant-secret-canary"
	err := Errorf(ManifestInvalid, "ampoule.toml:3: limits.memory: %q is not a size: %w", secret, fs.ErrInvalid)

	static := Static(err, "0123456789abcdef")
	if want := "launch: E1008 manifest-invalid (ref 0123456789abcdef)\n"; static != want {
		t.Errorf("Static = %q, want %q", static, want)
	}
	if strings.Contains(static, secret) {
		t.Error("Static leaks the detail")
	}

	detailed := Detailed(err)
	if !strings.Contains(detailed, secret) || !strings.HasPrefix(detailed, "launch: error: E1008 manifest-invalid: ampoule.toml:3:") {
		t.Errorf("Detailed = %q", detailed)
	}
	if !strings.Contains(detailed, "launch: hint: "+ManifestInvalid.Hint()) {
		t.Errorf("Detailed lacks the hint: %q", detailed)
	}
	if !errors.Is(err, fs.ErrInvalid) {
		t.Error("Errorf does not wrap with %w")
	}

	h := err.WithHint("do this instead")
	if !strings.Contains(Detailed(h), "launch: hint: do this instead") || err.Hint() == h.Hint() {
		t.Error("WithHint does not replace the hint, or changes the original")
	}
}

func TestFromWrapsUnknownErrorsAsInternal(t *testing.T) {
	e := From(errors.New("boom"))
	if e.Code != Internal {
		t.Fatalf("From(plain error).Code = %v, want Internal", e.Code)
	}
	wrapped := From(errors.Join(errors.New("x"), Errorf(OutputLimit, "too much")))
	if wrapped.Code != OutputLimit {
		t.Fatalf("From did not find the coded error in the chain: %v", wrapped.Code)
	}
	if Code(9999).Registered() || Code(9999).Class() != ClassInternal {
		t.Error("an unregistered code must be internal")
	}
}

// TestRetiredStayRetired: a retired number or name is never registered
// again, and each retired number lies in a class's range.
func TestRetiredStayRetired(t *testing.T) {
	if len(retired) == 0 {
		t.Fatal("no retired codes: E3006 was retired")
	}
	for _, r := range retired {
		if r.code.Registered() {
			t.Errorf("E%04d is retired and registered again", r.code)
		}
		for _, e := range registry {
			if e.name == r.name {
				t.Errorf("E%04d reuses the retired name %q of E%04d", e.code, r.name, r.code)
			}
		}
		if n := int(r.code) / 1000; n < 1 || n > 5 || r.why == "" {
			t.Errorf("E%04d: retired outside the class ranges or without a reason", r.code)
		}
	}
}
