package resource

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, ok := range []string{"default/tenant/api-key", "a/b/c", "Repo_1/type.v2/TAG-3", SealingKey,
		strings.Repeat("r", MaxSegment) + "/" + strings.Repeat("t", MaxSegment) + "/" + strings.Repeat("g", MaxSegment)} {
		p, err := Parse(ok)
		if err != nil {
			t.Errorf("Parse(%q): %v", ok, err)
			continue
		}
		if p.String() != ok {
			t.Errorf("Parse(%q).String() = %q", ok, p.String())
		}
	}
	for _, bad := range []string{"", "a", "a/b", "a/b/c/d", "/b/c", "a//c", "a/b/", "../b/c", "a/./c", "a/b/..",
		"a b/c/d", "a/b/c\x00", "a/b/c\n", "a/b/ç", "a\\b/c/d", "a/b/c?x", "a/b/%2e%2e",
		strings.Repeat("r", MaxSegment+1) + "/t/g", strings.Repeat("a/", 200) + "c"} {
		_, err := Parse(bad)
		if !errors.Is(err, ErrPath) {
			t.Errorf("Parse(%q) = %v, want ErrPath", bad, err)
		}
		if Valid(bad) {
			t.Errorf("Valid(%q)", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"default/tenant/api-key", "a/b", "../b/c", SealingKey} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrPath) {
				t.Fatalf("an error not wrapping ErrPath: %v", err)
			}
			return
		}
		if p.String() != s || len(s) > MaxPath || strings.Contains(s, "..") && (p.Repo == ".." || p.Type == ".." || p.Tag == "..") {
			t.Fatalf("accepted %q as %+v", s, p)
		}
		q, err := Parse(p.String())
		if err != nil || q != p {
			t.Fatalf("%q does not read back: %+v %v", s, q, err)
		}
	})
}
