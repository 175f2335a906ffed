package loader

import (
	"regexp"
	"strings"
	"testing"
)

// The patterns say what these regular expressions said before they were
// written out by hand; the tests hold each to its expression.
var patternRegexps = []struct {
	name string
	p    *pattern
	re   *regexp.Regexp
}{
	{"name", &namePattern, regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)},
	{"recipient", &recipientPattern, regexp.MustCompile(`^alog1[0-9a-f]{64}$`)},
	{"entry", &entryPattern, regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.$-]{0,127}$`)},
	{"env", &envNamePattern, regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)},
	{"secret", &secretNamePattern, regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)},
}

func TestPatternsMatchTheirRegexps(t *testing.T) {
	hex64 := strings.Repeat("0a", 32)
	inputs := []string{
		"", "a", "A", "0", "_", ".", "-", "$", "a.b-c_d", "Ab$c", "hello",
		"a\n", "\na", "a b", "é", "a\xff", "\x00", "a\x7f",
		strings.Repeat("a", 63), strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("A", 128), strings.Repeat("A", 129), strings.Repeat("_", 1000),
		"alog1", "alog1" + hex64, "alog1" + hex64 + "0", "alog1" + hex64[1:], "alog1" + strings.ToUpper(hex64), "xlog1" + hex64,
		"ALOG1" + hex64, hex64,
	}
	matched := map[string]int{}
	for _, pr := range patternRegexps {
		for _, in := range inputs {
			got, want := pr.p.match(in), pr.re.MatchString(in)
			if got != want {
				t.Errorf("%s pattern on %q: %v, its regexp says %v", pr.name, in, got, want)
			}
			if want {
				matched[pr.name]++
			}
		}
	}
	// Each pattern is seen both accepting and refusing.
	for _, pr := range patternRegexps {
		if matched[pr.name] == 0 || matched[pr.name] == len(inputs) {
			t.Errorf("%s: %d of %d inputs match: the table does not try both answers", pr.name, matched[pr.name], len(inputs))
		}
	}
}

func FuzzPatterns(f *testing.F) {
	f.Add("a.b-c_d")
	f.Add("alog1" + strings.Repeat("f", 64))
	f.Add(strings.Repeat("x", 64))
	f.Add("Ab$c\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, pr := range patternRegexps {
			if got, want := pr.p.match(s), pr.re.MatchString(s); got != want {
				t.Fatalf("%s pattern on %q: %v, its regexp says %v", pr.name, s, got, want)
			}
		}
	})
}
