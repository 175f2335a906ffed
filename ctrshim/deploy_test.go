package ctrshim

import (
	"bytes"
	"os"
	"path"
	"regexp"
	"testing"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/pelletier/go-toml/v2"
)

// The containerd fragment declares runc beside ampoule (a runtimes table
// replaces containerd's default), names the shim's runtime type, passes on
// the annotations the shim reads and names the shipped settings file; the
// RuntimeClass's handler is its runtime's name, and the example pod names
// the RuntimeClass with annotations the shim reads.
func TestDeployFragment(t *testing.T) {
	data, err := os.ReadFile("../deploy/kubernetes/containerd-config.toml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Plugins map[string]struct {
			Containerd struct {
				Default  string `toml:"default_runtime_name"`
				Runtimes map[string]struct {
					Type           string         `toml:"runtime_type"`
					PodAnnotations []string       `toml:"pod_annotations"`
					Options        map[string]any `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	rts := cfg.Plugins["io.containerd.grpc.v1.cri"].Containerd.Runtimes
	if rts["runc"].Type != "io.containerd.runc.v2" {
		t.Error("runtimes.runc is not declared: with any runtimes table, ordinary pods need it")
	}
	amp, ok := rts["ampoule"]
	if !ok || amp.Type != "io.containerd.ampoule.v1" {
		t.Fatalf("runtimes.ampoule: %+v", amp)
	}
	for _, a := range []string{AnnotationProfile, AnnotationBackend, AnnotationSimKey} {
		passed := false
		for _, glob := range amp.PodAnnotations {
			if m, _ := path.Match(glob, a); m {
				passed = true
			}
		}
		if !passed {
			t.Errorf("pod_annotations %v do not pass on %s", amp.PodAnnotations, a)
		}
	}
	// The settings file ConfigPath names (containerd 1.6 passes on
	// nothing else) is deploy/kubernetes's, and the shim takes it as it
	// is and with every setting it shows uncommented.
	if p, _ := amp.Options["ConfigPath"].(string); p != "/etc/ampoule/shim.toml" || len(amp.Options) != 1 {
		t.Errorf("the ampoule runtime's options are %v, want only ConfigPath = /etc/ampoule/shim.toml", amp.Options)
	}
	shipped, err := os.ReadFile("../deploy/kubernetes/ampoule-shim.toml")
	if err != nil {
		t.Fatal(err)
	}
	uncommented := regexp.MustCompile(`(?m)^# ((?:Linger|Warm) = .*)$`).ReplaceAll(shipped, []byte("$1"))
	for name, body := range map[string][]byte{"as shipped": shipped, "uncommented": uncommented} {
		set, err := ResolveSettings(func(string) string { return "" }, options(t, &runtimeoptions.Options{ConfigBody: body}))
		if err != nil || set != DefaultSettings() {
			t.Errorf("ampoule-shim.toml %s: %+v, %v; want the defaults it documents", name, set, err)
		}
	}
	if bytes.Equal(shipped, uncommented) || !bytes.Contains(uncommented, []byte("\nLinger = ")) || !bytes.Contains(uncommented, []byte("\nWarm = ")) {
		t.Error("ampoule-shim.toml does not show both settings, commented out")
	}
	rc, err := os.ReadFile("../deploy/kubernetes/runtimeclass.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^handler: ampoule$`).Match(rc) {
		t.Error("the RuntimeClass's handler is not the runtime's name, ampoule")
	}
	// The example pod names the RuntimeClass, and each of its
	// annotations is one the shim reads.
	name := regexp.MustCompile(`(?m)^  name: (\S+)$`).FindSubmatch(rc)
	pod, err := os.ReadFile("../deploy/kubernetes/pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if name == nil || !regexp.MustCompile(`(?m)^  runtimeClassName: `+regexp.QuoteMeta(string(name[1]))+`$`).Match(pod) {
		t.Errorf("pod.yaml does not name the RuntimeClass %q", name)
	}
	anns := regexp.MustCompile(`(?m)^    (run\.ampoule\.[a-z-]+): `).FindAllSubmatch(pod, -1)
	if len(anns) == 0 {
		t.Error("pod.yaml shows no run.ampoule annotation")
	}
	for _, a := range anns {
		if k := string(a[1]); k != AnnotationProfile && k != AnnotationBackend && k != AnnotationSimKey {
			t.Errorf("pod.yaml's annotation %s is none the shim reads", k)
		}
	}
}
