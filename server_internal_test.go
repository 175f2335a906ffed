package ampoule

import (
	"testing"

	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/sandbox"
)

// TestSecretsRunCold: a run with secrets never takes or leaves a warm
// runner, whose spec would hold another run's secrets; nor a run with
// mounts or a sealed mount.
func TestSecretsRunCold(t *testing.T) {
	plain := &loader.Manifest{}
	if !warmable(plain, sandbox.Spec{}) {
		t.Fatal("a plain run is not warmable")
	}
	for name, c := range map[string]struct {
		m    *loader.Manifest
		spec sandbox.Spec
	}{
		"declared secrets": {&loader.Manifest{Secrets: map[string]string{"api-key": "default/tenant/api-key"}}, sandbox.Spec{}},
		"secrets in spec":  {plain, sandbox.Spec{Secrets: map[string][]byte{"api-key": []byte("v")}}},
		"a mount":          {plain, sandbox.Spec{Dirs: []sandbox.Mount{{Host: "/tmp", Guest: "/tmp"}}}},
		"a sealed mount":   {&loader.Manifest{Sealed: &loader.Sealed{Guest: "/sealed"}}, sandbox.Spec{}},
	} {
		if warmable(c.m, c.spec) {
			t.Errorf("%s: warmable", name)
		}
	}
}
