package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// TestVerifyInputHints goes through every input of launch verify: each
// file it names, missing, is refused naming its flag with that flag's own
// hint (never "the JSON that 'launch attest' wrote" but for the evidence
// envelope itself); each value that is not what its flag takes has a hint
// of its own, not the registry's generic one; and a flag verify gains
// without a hint fails here.
func TestVerifyInputHints(t *testing.T) {
	samples := filepath.Join(testwasm.Root(t), "testdata")
	report, vcek := filepath.Join(samples, "snp", "report.bin"), filepath.Join(samples, "snp", "vcek.der")
	quote := filepath.Join(samples, "tdx", "quote.dat")
	missing := filepath.Join(t.TempDir(), "missing")
	policy := writeFile(t, t.TempDir(), "policy.toml", []byte(launch(t, "policy", "new", "--from", testwasm.Example(t, "hello"), "--profile", "staging", "--backend", "sim", "--allow-insecure").stdout))

	files := map[string][]string{
		"--snp-report":     {"--snp-report", missing, "--vcek", vcek},
		"--vcek":           {"--snp-report", report, "--vcek", missing},
		"--vlek":           {"--snp-report", report, "--vlek", missing},
		"--chain":          {"--snp-report", report, "--vcek", vcek, "--chain", missing},
		"--tdx-quote":      {"--tdx-quote", missing},
		"--tdx-collateral": {"--tdx-quote", quote, "--tdx-collateral", missing},
		"--policy":         {"--policy", missing, missing},
		"EVIDENCE":         {"--policy", policy, missing},
		"--ear":            {"--ear", missing, "--jwks", missing},
		"--jwks":           {"--ear", "a.b.c", "--jwks", missing},
	}
	attestHint := errcode.EvidenceMalformed.Hint()
	for flag, args := range files {
		r := launch(t, append([]string{"verify"}, args...)...)
		hint := attest.InputHints[flag]
		if r.code != errcode.ClassUsage.ExitStatus() || hint == "" || !strings.Contains(r.stderr, "launch: hint: "+hint+"\n") {
			t.Errorf("%s missing: want the hint %q: %+v", flag, hint, r)
		}
		if flag != "EVIDENCE" && (!strings.Contains(r.stderr, ": "+flag+": ") || strings.Contains(r.stderr, attestHint)) {
			t.Errorf("%s missing: the flag is not named, or the envelope's hint is given: %q", flag, r.stderr)
		}
	}
	values := map[string][]string{
		"--nonce":   {"--policy", policy, "--nonce", "zz", missing},
		"--at":      {"--at", "yesterday", "--tdx-quote", quote},
		"--product": {"--snp-report", report, "--vcek", vcek, "--product", "Rome"},
	}
	for flag, args := range values {
		r := launch(t, append([]string{"verify"}, args...)...)
		if r.code != errcode.ClassUsage.ExitStatus() || !strings.Contains(r.stderr, "launch: hint: ") || strings.Contains(r.stderr, "launch: hint: "+errcode.Usage.Hint()) {
			t.Errorf("%s: want a hint of its own: %+v", flag, r)
		}
	}

	// Every flag verify takes a value for is one of those above.
	help := launch(t, "verify", "--help").stdout
	var got, want []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+) (string|value)$`).FindAllStringSubmatch(help, -1) {
		got = append(got, "--"+m[1])
	}
	for f := range files {
		if f != "EVIDENCE" {
			want = append(want, f)
		}
	}
	for f := range values {
		want = append(want, f)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("verify's flags that take a value are %v; hints are checked for %v", got, want)
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
