package ampoule

import (
	"bytes"
	"context"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/fakertmr"
	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
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

// startBroker runs a real broker (bbolt file, loopback HTTP) with no
// policy yet.
func startBroker(t *testing.T) (*broker.Server, *httptest.Server) {
	t.Helper()
	s, err := broker.Open(filepath.Join(t.TempDir(), "broker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

// brokerBundle is the notebook whose sealed mount takes its key from the
// broker at url, pinned by key.
func brokerBundle(t *testing.T, url string, key []byte) string {
	t.Helper()
	return testwasm.CopyBundle(t, testwasm.Example(t, "notebook"), "name = \"notebook\"\nprofiles = [\"debug\", \"staging\", \"production\"]\n"+
		"[broker]\nurl = \""+url+"\"\nkey = \""+hex.EncodeToString(key)+"\"\n[sealed]\nmount = \"/sealed\"\nkey = \"broker\"\n[limits]\nwall_time = \"10s\"\n")
}

// policyFor accepts the bundle's measurement under the profile and
// backend.
func policyFor(t *testing.T, bundle, profile, backend string, extra string) *attest.Policy {
	t.Helper()
	b, err := loader.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + loader.Measure(b, profile).String() + "\"]\nprofiles = [\"" + profile + "\"]\nbackends = [\"" + backend + "\"]\n" + extra))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestScrubbedEnv: a protected launcher starts again unless its
// environment holds exactly GOTRACEBACK=none and no GODEBUG, and then runs
// with the host's other variables as they were.
func TestScrubbedEnv(t *testing.T) {
	for _, tc := range []struct {
		env     []string
		changed bool
	}{
		{[]string{"HOME=/h", "GOTRACEBACK=none"}, false},
		{[]string{"HOME=/h"}, true},
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
	srv, httpSrv := startBroker(t)
	bundle := brokerBundle(t, httpSrv.URL, srv.PublicKey())
	fake := tdxfake.New(t)
	regs := fakertmr.CreateRtmrSubsystem(t.TempDir())
	fake.Registers = regs
	srv.SetPolicy(policyFor(t, bundle, "production", "tdx", "tdx_require_rtmr = true\n"))
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
