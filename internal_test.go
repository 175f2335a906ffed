package ampoule

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/fakertmr"
	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/codecache"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/brokertest"
	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/sealed"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// TestScrubbedEnv: a protected launcher starts again if its environment
// holds a GODEBUG, or a GOTRACEBACK other than one GOTRACEBACK=none, and
// then runs with the host's other variables as they were.
func TestScrubbedEnv(t *testing.T) {
	for _, tc := range []struct {
		env     []string
		changed bool
	}{
		{[]string{"HOME=/h", "GOTRACEBACK=none"}, false},
		// No GOTRACEBACK: the default level, which Protect silences
		// without starting again (TestProtectSilencesTheRuntime).
		{[]string{"HOME=/h"}, false},
		{[]string{"HOME=/h", "GOTRACEBACK=none", "GOTRACEBACK=none"}, true},
		{[]string{"GOTRACEBACK=crash"}, true},
		{[]string{"GOTRACEBACK=none", "GOTRACEBACK=crash"}, true},
		{[]string{"GOTRACEBACK=none", "GODEBUG=gctrace=1"}, true},
		{[]string{"GOTRACEBACK=none", "GODEBUG="}, true},
	} {
		clean, changed := scrubbedEnv(tc.env)
		if changed != tc.changed {
			t.Errorf("%q: changed = %v", tc.env, changed)
		}
		if again, ch := scrubbedEnv(clean); ch || strings.Join(again, " ") != strings.Join(clean, " ") {
			t.Errorf("%q: the scrubbed %q would start again", tc.env, clean)
		}
		for _, kv := range clean {
			if strings.HasPrefix(kv, "GODEBUG=") || (strings.HasPrefix(kv, "GOTRACEBACK=") && kv != "GOTRACEBACK=none") {
				t.Errorf("%q: scrubbed to %q", tc.env, clean)
			}
		}
		if tc.env[0] == "HOME=/h" && clean[0] != "HOME=/h" {
			t.Errorf("%q: HOME was lost: %q", tc.env, clean)
		}
	}
}

// TestSealingKeyPerBackend: SEV-SNP's derived key (go-sev-guest's fake
// device) opens a sealed mount; TDX, and SEV-SNP through configfs-tsm with
// no device, give no sealing key, so a manifest whose sealed mount takes
// its key from the TEE is refused there with its code, before anything
// runs.
func TestSealingKeyPerBackend(t *testing.T) {
	b, err := loader.FromFS(os.DirFS(testwasm.Example(t, "notebook")), "notebook")
	if err != nil {
		t.Fatal(err)
	}
	mm := loader.Measure(b, "production")
	withDevice, _, _ := snpfake.Backend(t, [64]byte{})
	key, err := teeSealingKey(context.Background(), withDevice, b.Manifest, mm)
	if err != nil || len(key) != 32 {
		t.Fatalf("SEV-SNP with a device: %d bytes, %v", len(key), err)
	}
	// A run's sealed mount: its key from a device that answers any
	// report data, with debugging off, as production needs.
	prod, _ := profiles.Get("production")
	anyData, _, _ := snpfake.AnyBackend(t, snpfake.Options{Debug: false})
	r := newRun(prod, Config{Profile: "production", SealedStore: filepath.Join(t.TempDir(), "x.sealed"), TEE: anyData})
	r.kind = tee.KindSNP
	var spec sandbox.Spec
	s, err := r.openSealed(context.Background(), b.Manifest, mm, &spec, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Dirs) != 1 || spec.Dirs[0].Guest != "/sealed" || !spec.Dirs[0].Writable || !sealed.MemoryBacked(spec.Dirs[0].Host) || spec.Dirs[0].MaxBytes != b.Manifest.Sealed.MaxBytes {
		t.Errorf("sealed mount %+v", spec.Dirs)
	}
	if _, err := s.SealBack(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spec.Dirs[0].Host); !os.IsNotExist(err) {
		t.Errorf("the workspace outlived the seal: %v", err)
	}
	configfsOnly, _, _ := snpfake.QuoteBackend(t, [64]byte{})
	for name, be := range map[string]tee.Backend{"tdx": tdx.NewBackend(nil), "sev-snp through configfs-tsm": configfsOnly} {
		if _, err := teeSealingKey(context.Background(), be, b.Manifest, mm); errcode.From(err).Code != errcode.SealingUnavailable {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestTDXSealingFromBroker: TDX has no sealing key; with key = "broker" a
// TDX run (the signing fake and fake RTMRs behind the real backend) gets
// one from the broker, which verifies the quote, the report data and the
// RTMR3 event, and the sealed mount opens.
func TestTDXSealingFromBroker(t *testing.T) {
	srv, httpSrv := brokertest.Start(t)
	bundle := brokertest.Bundle(t, httpSrv.URL, srv.PublicKey())
	fake := tdxfake.New(t)
	regs := fakertmr.CreateRtmrSubsystem(t.TempDir())
	fake.Registers = regs
	srv.SetPolicy(brokertest.PolicyFor(t, bundle, "production", "tdx", "tdx_require_rtmr = true\n"))
	srv.Verify = attest.Options{TDXRoots: fake.Roots()}

	b, err := loader.FromFS(os.DirFS(bundle), bundle)
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := profiles.Get("production")
	r := newRun(prod, Config{Profile: "production", TEE: tdx.NewBackend(fake).WithRTMR(regs, filepath.Join(t.TempDir(), "rtmr.lock"))})
	r.kind = tee.KindTDX
	mm := loader.Measure(b, "production")
	key, err := r.sealingKey(context.Background(), b.Manifest, mm, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if r.envelope == nil || r.envelope.Event == nil || r.envelope.Kind != tdx.Kind {
		t.Fatalf("the run's envelope %+v", r.envelope)
	}
	s, err := sealed.OpenMount(filepath.Join(t.TempDir(), "x.sealed"), &sealed.Keys{Self: mm, Key: key}, b.Manifest.Sealed.MaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SealBack(); err != nil {
		t.Fatal(err)
	}
	// Without the test roots the broker refuses the fake's chain.
	srv.Verify = attest.Options{}
	r2 := newRun(prod, Config{Profile: "production", TEE: tdx.NewBackend(fake)})
	if _, err := r2.sealingKey(context.Background(), b.Manifest, mm, hclog.NewNullLogger()); errcode.From(err).Code != errcode.BrokerRefused || !strings.Contains(err.Error(), "not Intel's") {
		t.Errorf("a test-only chain at a real broker: %v", err)
	}
}

// TestTEEDebugBitRefusesTheSealingKey: under production a TEE its host may
// debug gives no sealing key: the run's evidence is judged before the key
// is taken.
func TestTEEDebugBitRefusesTheSealingKey(t *testing.T) {
	src := testwasm.Example(t, "notebook")
	b, err := loader.FromFS(os.DirFS(src), src)
	if err != nil {
		t.Fatal(err)
	}
	prod, _ := profiles.Get("production")
	for _, debug := range []bool{true, false} {
		be, _, _ := snpfake.AnyBackend(t, snpfake.Options{Debug: debug})
		r := newRun(prod, Config{Profile: "production", TEE: be, Warnings: &bytes.Buffer{}})
		key, err := r.sealingKey(context.Background(), b.Manifest, loader.Measure(b, "production"), hclog.NewNullLogger())
		switch {
		case debug && (err == nil || errcode.From(err).Code != errcode.TEEDebugRefused || key != nil):
			t.Errorf("a debug TEE's sealing key under production: %v", err)
		case !debug && (err != nil || len(key) != 32):
			t.Errorf("a TEE with debugging off: %v", err)
		}
	}
}

// TestCodeKeyPerBackend: the compilation cache's key is the backend's
// own derivation with its own label (not the sealing key); SEV-SNP's
// comes from the device once the run's evidence is judged, and a TEE its
// host may debug gives none under production; TDX derives none, so its
// code stays in memory.
func TestCodeKeyPerBackend(t *testing.T) {
	b, err := loader.FromFS(os.DirFS(testwasm.Example(t, "notebook")), "notebook")
	if err != nil {
		t.Fatal(err)
	}
	mm := loader.Measure(b, "production")
	prod, _ := profiles.Get("production")
	anyData, _, _ := snpfake.AnyBackend(t, snpfake.Options{Debug: false})
	r := newRun(prod, Config{Profile: "production", TEE: anyData})
	r.kind = tee.KindSNP
	key, err := r.codeKey(context.Background(), mm, hclog.NewNullLogger())
	if err != nil || len(key) != 32 {
		t.Fatalf("SEV-SNP: %d bytes, %v", len(key), err)
	}
	sealing, err := anyData.SealingKey(context.Background(), mm)
	if err != nil || bytes.Equal(sealing, key) {
		t.Errorf("the code key is the sealing key (%v)", err)
	}
	other := mm
	other[0] ^= 1
	if k2, err := anyData.DeriveKey(context.Background(), other, codecache.KeyLabel); err != nil || bytes.Equal(k2, key) {
		t.Errorf("another measurement has the same code key (%v)", err)
	}

	debuggable, _, _ := snpfake.AnyBackend(t, snpfake.Options{Debug: true})
	r = newRun(prod, Config{Profile: "production", TEE: debuggable})
	r.kind = tee.KindSNP
	if _, err := r.codeKey(context.Background(), mm, hclog.NewNullLogger()); errcode.From(err).Code != errcode.TEEDebugRefused {
		t.Errorf("a debuggable TEE under production: %v", err)
	}

	r = newRun(prod, Config{Profile: "production", TEE: tdx.NewBackend(nil)})
	r.kind = tee.KindTDX
	if _, err := r.codeKey(context.Background(), mm, hclog.NewNullLogger()); !errors.Is(err, errNoCodeKey) {
		t.Errorf("TDX: %v", err)
	}
}
