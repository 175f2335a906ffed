package profiles

import (
	"errors"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

func TestProductionIsStrictest(t *testing.T) {
	p, err := Get("production")
	if err != nil {
		t.Fatal(err)
	}
	if w := p.Warnings(); len(w) != 0 {
		t.Errorf("production has relaxations: %v", w)
	}
	if p.AllowsBackend("sim") {
		t.Error("production must never run on the simulator")
	}
}

func TestEveryRelaxationIsNamed(t *testing.T) {
	// Each profile's warnings must be a superset of every stricter profile's.
	var prev map[string]bool
	for i := len(Names()) - 1; i >= 0; i-- {
		p, err := Get(Names()[i])
		if err != nil {
			t.Fatal(err)
		}
		cur := map[string]bool{}
		for _, w := range p.Warnings() {
			if w.Name == "" || w.Text == "" {
				t.Errorf("%s: unnamed warning %+v", p.Name, w)
			}
			cur[w.Name] = true
		}
		for n := range prev {
			if !cur[n] {
				t.Errorf("%s is stricter than a stricter profile on %q", p.Name, n)
			}
		}
		prev = cur
	}
	debug, _ := Get("debug")
	want := []string{"full-errors", "plain-logs", "exit-code-passthrough", "simulator-allowed", "no-seccomp", "unprotected-launcher", "bare-module", "host-overrides", "disk-cache", "sealed-plain"}
	got := map[string]bool{}
	for _, w := range debug.Warnings() {
		got[w.Name] = true
	}
	for _, n := range want {
		if !got[n] {
			t.Errorf("debug lacks warning %q", n)
		}
	}
}

func TestStaticProfilesHideEverything(t *testing.T) {
	for _, n := range []string{"staging", "production"} {
		p, _ := Get(n)
		if !p.StaticErrors || p.PlainLogs || p.PassExitCode || p.AllowBareModule || p.AllowHostOverrides || p.DiskCache || !p.Seccomp || !p.Protected {
			t.Errorf("%s is not a static profile: %+v", n, p)
		}
	}
}

func TestUnknownProfile(t *testing.T) {
	_, err := Get("prod")
	var e *errcode.Error
	if !errors.As(err, &e) || e.Code != errcode.ProfileUnknown {
		t.Fatalf("Get(prod) = %v, want ProfileUnknown", err)
	}
}

func TestGetReturnsCopies(t *testing.T) {
	a, _ := Get("production")
	a.Backends[0] = "sim"
	b, _ := Get("production")
	if b.AllowsBackend("sim") {
		t.Fatal("changing one profile value changed the table")
	}
}
