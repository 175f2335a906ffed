package attest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	helloStaging    = "d0a52dd3856fdedd2f32eb0a7d2a8bb411aa11f49378638f1fdb30e412bb8cdf67e792456dbaac1ba21311d9bb87defe"
	helloProduction = "fd1099b1756a51f72fc9941b09619c0e074c87ab8569ef256077e0f47e6fd950877dd9153546891696c0fdd22b600427"
	helloSimPin     = "02ace9d6898104b5d78a3afae7f578605c33f5213feb44495a6bcb7b18d12817"
)

// TestWriteTemplateGolden: WriteTemplate writes, byte for byte, what
// 'launch policy new' printed before it moved here (captured in testdata:
// the hello example under staging and production, backends sim and
// sev-snp, this machine's simulator key pinned; and with the defaults,
// production on sev-snp and tdx, nothing pinned), and what it writes is a
// policy that parses.
func TestWriteTemplateGolden(t *testing.T) {
	for file, tmpl := range map[string]Template{
		"policy-new.golden": {
			Bundle: "hello", Version: "1.0.0",
			Measurements: []ProfileMeasurement{{"staging", helloStaging}, {"production", helloProduction}},
			Profiles:     []string{"staging", "production"}, Backends: []string{"sim", "sev-snp"}, AllowInsecure: true, SimPin: helloSimPin,
		},
		"policy-new-default.golden": {
			Bundle: "hello", Version: "1.0.0",
			Measurements: []ProfileMeasurement{{"production", helloProduction}},
			Profiles:     []string{"production"}, Backends: []string{"sev-snp", "tdx"},
		},
	} {
		want, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := WriteTemplate(&got, tmpl); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: WriteTemplate wrote\n%s\nwant\n%s", file, got.Bytes(), want)
		}
		if _, err := ParsePolicy(got.Bytes()); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}

// TestWriteTemplateRefuses: a template whose text would not parse, or
// would read back as another policy than the template says (a name ending
// its comment line to add a rule of its own), is refused and nothing is
// written; a name TOML must escape reads back as itself.
func TestWriteTemplateRefuses(t *testing.T) {
	good := func() Template {
		return Template{Bundle: "hello", Version: "1.0.0", Measurements: []ProfileMeasurement{{"staging", helloStaging}},
			Profiles: []string{"staging"}, Backends: []string{"sim"}, AllowInsecure: true, SimPin: helloSimPin}
	}
	for name, change := range map[string]func(*Template){
		"bundle name ending its comment": func(t *Template) { t.Bundle = "hello\ntdx_require_rtmr = true\n#" },
		"version ending its comment":     func(t *Template) { t.Version = "1.0.0\rsim_keys = \"any\"" },
		"profile ending its comment": func(t *Template) {
			t.Measurements[0].Profile = "staging\n]\nallow_debug = true\nx = [\n"
		},
		"measurement not hex":     func(t *Template) { t.Measurements[0].Measurement = "zz" + helloStaging[2:] },
		"measurement with a rule": func(t *Template) { t.Measurements[0].Measurement = helloStaging + "\", \"" + helloProduction },
		"no measurement":          func(t *Template) { t.Measurements = nil },
		"no profile":              func(t *Template) { t.Profiles = nil },
		"unknown backend":         func(t *Template) { t.Backends = []string{"kvm"} },
		"sim pin not a key":       func(t *Template) { t.SimPin = "00" },
		"sim pin with another":    func(t *Template) { t.SimPin = helloSimPin + "\", \"" + strings.Repeat("ab", 32) },
		"profile not valid UTF-8": func(t *Template) { t.Profiles = []string{"stag\xffing"} },
		"sim pin saying any":      func(t *Template) { t.SimPin = "any" },
	} {
		tmpl := good()
		change(&tmpl)
		var out bytes.Buffer
		if err := WriteTemplate(&out, tmpl); !errors.Is(err, ErrPolicy) || out.Len() != 0 {
			t.Errorf("%s: %v, wrote %d bytes", name, err, out.Len())
		}
	}
	tmpl := good()
	tmpl.Profiles = []string{"staging", "a,b \"c\" \\d <e>"}
	var out bytes.Buffer
	if err := WriteTemplate(&out, tmpl); err != nil {
		t.Fatalf("a profile TOML escapes: %v", err)
	}
	if p, err := ParsePolicy(out.Bytes()); err != nil || len(p.Profiles) != 2 || p.Profiles[1] != tmpl.Profiles[1] {
		t.Errorf("a profile TOML escapes reads back as %v, %v", p, err)
	}
	if err := WriteTemplate(failingWriter{}, good()); err == nil || errors.Is(err, ErrPolicy) || !errors.Is(err, errWrite) {
		t.Errorf("a failing writer: %v", err)
	}
}

var errWrite = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

// FuzzWriteTemplate: any template is refused with ErrPolicy, writing
// nothing, or written as a policy that parses, with the template's names
// in its first line and no line of its own (its length is the template's
// shape: 53 lines, one per measurement, four for a simulator pin).
func FuzzWriteTemplate(f *testing.F) {
	f.Add("hello", "1.0.0", "staging", helloStaging, "sim", true, helloSimPin)
	f.Fuzz(func(t *testing.T, bundle, version, profile, measurement, backend string, allowInsecure bool, simPin string) {
		tmpl := Template{Bundle: bundle, Version: version, Measurements: []ProfileMeasurement{{profile, measurement}},
			Profiles: []string{profile}, Backends: []string{backend}, AllowInsecure: allowInsecure, SimPin: simPin}
		var out bytes.Buffer
		if err := WriteTemplate(&out, tmpl); err != nil {
			if !errors.Is(err, ErrPolicy) || out.Len() != 0 {
				t.Fatalf("%v, wrote %d bytes", err, out.Len())
			}
			return
		}
		want := 53 + 1
		if simPin != "" {
			want += 4
		}
		if n := strings.Count(out.String(), "\n"); n != want {
			t.Fatalf("%d lines, want %d:\n%s", n, want, out.String())
		}
		if first := "# Verification policy for " + bundle + " " + version + ", made by 'launch policy new'.\n"; !strings.HasPrefix(out.String(), first) {
			t.Fatalf("first line is not %q:\n%s", first, out.String())
		}
		if _, err := ParsePolicy(out.Bytes()); err != nil {
			t.Fatalf("written policy does not parse: %v", err)
		}
	})
}

// TestTemplatePinnedRTMRsStayLast: a template that pins the TD's RTMRs
// writes their table after every commented top-level pin and without the
// commented example of the same table, so a tenant who uncomments a pin
// gets that pin, not a key inside [tdx_rtmrs] (which the policy would
// refuse) nor a second [tdx_rtmrs].
func TestTemplatePinnedRTMRsStayLast(t *testing.T) {
	rtmr1, rtmr2 := strings.Repeat("1", 96), strings.Repeat("2", 96)
	tmpl := Template{
		Bundle: "hello", Version: "1.0.0",
		Measurements: []ProfileMeasurement{{"production", helloProduction}},
		Profiles:     []string{"production"}, Backends: []string{"tdx"},
		Secrets: []string{"default/hello/key"},
		VM: &VMPins{TDXMRTDs: []string{strings.Repeat("a", 96)}, SNPHostData: strings.Repeat("b", 64), TDXMRConfigID: strings.Repeat("c", 96),
			TDXRTMRs: [3]string{"", rtmr1, rtmr2}, RTMRNotes: []string{"rtmr0 is not pinned"}, Inputs: "a TDVF"},
	}
	var b bytes.Buffer
	if err := WriteTemplate(&b, tmpl); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	if strings.Count(text, "[tdx_rtmrs]") != 1 || strings.Contains(text, "# [tdx_rtmrs]") {
		t.Errorf("the template has the table other than once, pinned:\n%s", text)
	}
	uncommented := strings.Replace(text, "# tdx_require_rtmr = true", "tdx_require_rtmr = true", 1)
	if uncommented == text {
		t.Fatal("the template has no commented tdx_require_rtmr pin")
	}
	p, err := ParsePolicy([]byte(uncommented))
	if err != nil {
		t.Fatalf("the template with a pin uncommented does not parse: %v\n%s", err, uncommented)
	}
	if !p.TDXRequireRTMR || p.TDXRTMRs[0] != nil || p.TDXRTMRs[1] == nil || p.TDXRTMRs[2] == nil || len(p.Grants) != 1 {
		t.Errorf("read back: require %v, rtmrs %v, grants %d", p.TDXRequireRTMR, p.TDXRTMRs, len(p.Grants))
	}
}
