package attest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

const grantsHead = `measurements = ["%m", "%o"]
profiles = ["staging", "production"]
backends = ["sim", "sev-snp"]
allow_insecure = true
sim_keys = "any"
`

func grantsPolicy(t *testing.T, grants string) (*Policy, error) {
	t.Helper()
	other := [48]byte{1}
	doc := strings.NewReplacer("%m", hex.EncodeToString(testMeasurement[:]), "%o", hex.EncodeToString(other[:])).Replace(grantsHead + grants)
	return ParsePolicy([]byte(doc))
}

func TestPolicyGrants(t *testing.T) {
	p, err := grantsPolicy(t, `
[[grants]]
resources = ["default/tenant/api-key", "default/tenant/db"]
measurements = ["%m"]
insecure = true

[[grants]]
resources = ["default/tenant/prod-only"]
measurements = ["%m"]
profiles = ["production"]
backends = ["sev-snp"]
`)
	if err != nil {
		t.Fatal(err)
	}
	other := [48]byte{1}
	for _, tc := range []struct {
		path                    string
		m                       [48]byte
		profile, backend, class string
		want                    bool
	}{
		{"default/tenant/api-key", testMeasurement, "staging", "sim", ClassInsecure, true},
		{"default/tenant/db", testMeasurement, "production", "sev-snp", ClassHardware, true},
		{"default/tenant/db", testMeasurement, "production", "sev-snp", ClassDebug, true},
		{"default/tenant/api-key", other, "staging", "sim", ClassInsecure, false},
		{"default/tenant/other", testMeasurement, "staging", "sim", ClassInsecure, false},
		{"default/tenant/prod-only", testMeasurement, "production", "sev-snp", ClassHardware, true},
		{"default/tenant/prod-only", testMeasurement, "staging", "sev-snp", ClassHardware, false},
		{"default/tenant/prod-only", testMeasurement, "production", "sim", ClassInsecure, false},
		{"default/tenant/prod-only", other, "production", "sev-snp", ClassHardware, false},
		// Without insecure = true, only hardware evidence gets it.
		{"default/tenant/prod-only", testMeasurement, "production", "sev-snp", ClassDebug, false},
		{"default/tenant/prod-only", testMeasurement, "production", "sev-snp", ClassInsecure, false},
	} {
		if got := p.Granted(tc.path, tc.m, tc.profile, tc.backend, tc.class); got != tc.want {
			t.Errorf("Granted(%s, %x…, %s, %s, %s) = %v", tc.path, tc.m[:2], tc.profile, tc.backend, tc.class, got)
		}
	}
	if none, _ := grantsPolicy(t, ""); none.Granted("default/tenant/api-key", testMeasurement, "staging", "sim", ClassInsecure) {
		t.Error("a policy without grants grants")
	}
}

func TestPolicyGrantsRefused(t *testing.T) {
	for _, tc := range []struct{ name, grants, want string }{
		{"malformed path", "[[grants]]\nresources = [\"tenant/api-key\"]\nmeasurements = [\"%m\"]\n", "grants[0].resources: not a resource path"},
		{"dot dot", "[[grants]]\nresources = [\"default/../key\"]\nmeasurements = [\"%m\"]\n", "grants[0].resources: not a resource path"},
		{"no resources", "[[grants]]\nmeasurements = [\"%m\"]\n", "grants[0].resources: list 1 to"},
		{"sealing key", "[[grants]]\nresources = [\"ampoule/sealing/key\"]\nmeasurements = [\"%m\"]\n", "is the sealing key"},
		{"no measurements", "[[grants]]\nresources = [\"default/tenant/k\"]\n", "grants[0].measurements: list the measurements"},
		{"bad hex", "[[grants]]\nresources = [\"default/tenant/k\"]\nmeasurements = [\"zz\"]\n", "grants[0].measurements: \"zz\" is not 96 hex digits"},
		{"foreign measurement", "[[grants]]\nresources = [\"default/tenant/k\"]\nmeasurements = [\"" + strings.Repeat("ee", 48) + "\"]\n", "is not among the policy's measurements"},
		{"foreign profile", "[[grants]]\nresources = [\"default/tenant/k\"]\nmeasurements = [\"%m\"]\nprofiles = [\"debug\"]\n", "grants[0].profiles: \"debug\" is not among"},
		{"foreign backend", "[[grants]]\nresources = [\"default/tenant/k\"]\nmeasurements = [\"%m\"]\nbackends = [\"tdx\"]\n", "grants[0].backends: \"tdx\" is not among"},
		{"unknown key", "[[grants]]\nresources = [\"default/tenant/k\"]\nmeasurements = [\"%m\"]\nresource = \"x\"\n", "line 9"},
	} {
		_, err := grantsPolicy(t, tc.grants)
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestTemplateGrantsTheSecrets(t *testing.T) {
	tmpl := Template{Bundle: "consumer", Version: "1", Measurements: []ProfileMeasurement{{"staging", helloStaging}},
		Profiles: []string{"staging"}, Backends: []string{"sim"}, AllowInsecure: true, SimPin: helloSimPin,
		Secrets: []string{"default/tenant/api-key", "default/tenant/db"}}
	var out bytes.Buffer
	if err := WriteTemplate(&out, tmpl); err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var m [48]byte
	hex.Decode(m[:], []byte(helloStaging))
	for _, r := range tmpl.Secrets {
		if !p.Granted(r, m, "staging", "sim", ClassInsecure) {
			t.Errorf("%s is not granted:\n%s", r, out.String())
		}
	}
	if p.Granted("default/tenant/other", m, "staging", "sim", ClassInsecure) || len(p.Grants) != 1 {
		t.Errorf("the template grants more than the secrets: %+v", p.Grants)
	}
	// A policy refusing the simulator grants hardware evidence alone.
	hw := tmpl
	hw.Backends, hw.AllowInsecure, hw.SimPin = []string{"sev-snp"}, false, ""
	out.Reset()
	if err := WriteTemplate(&out, hw); err != nil {
		t.Fatal(err)
	}
	if p, err := ParsePolicy(out.Bytes()); err != nil || p.Grants[0].Insecure || strings.Contains(out.String(), "insecure = true") {
		t.Errorf("a hardware policy's grant gives insecure evidence its secrets (%v):\n%s", err, out.String())
	}
	// Without secrets, no grant at all.
	tmpl.Secrets = nil
	out.Reset()
	if err := WriteTemplate(&out, tmpl); err != nil || strings.Contains(out.String(), "[[grants]]") {
		t.Errorf("a template without secrets writes a grant (%v):\n%s", err, out.String())
	}
	// A malformed path is refused, nothing written.
	tmpl.Secrets = []string{"not/a path/x"}
	out.Reset()
	if err := WriteTemplate(&out, tmpl); !errors.Is(err, ErrPolicy) || out.Len() != 0 {
		t.Errorf("a malformed secret's template: %v, %d bytes", err, out.Len())
	}
}
