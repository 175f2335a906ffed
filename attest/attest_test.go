package attest

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/fakertmr"
	sevtest "github.com/google/go-sev-guest/testing"
	tdxpb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtestdata "github.com/google/go-tdx-guest/testing/testdata"

	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

var (
	testMeasurement = [48]byte{1, 2, 3}
	testNonce       = []byte("nonce-0123456789")
	testRuntimeKey  = p256Point()
)

// simEnvelope makes real simulator evidence for the test measurement.
// p256Point is a fixed P-256 public key, as runtime keys are.
func p256Point() []byte {
	k, err := ecdh.P256().NewPrivateKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		panic(err)
	}
	return k.PublicKey().Bytes()
}

func simEnvelope(t *testing.T, seed byte) *tee.Envelope {
	t.Helper()
	key := ed25519.NewKeyFromSeed(append(make([]byte, 31), seed))
	b := sim.New(key)
	rd := tee.ReportData(testMeasurement, testRuntimeKey, testNonce)
	ev, err := b.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sim.Verify(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &tee.Envelope{
		Version: tee.EnvelopeVersion, Kind: sim.Kind, Insecure: true, Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: hex.EncodeToString(testMeasurement[:]), Profile: "staging", RuntimeKey: testRuntimeKey, Nonce: testNonce, Issued: c.Issued,
	}
}

func policy(t *testing.T, extra string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(testMeasurement[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\nsim_keys = \"any\"\nmax_age = \"100000h\"\n" + extra))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSimAttestVerify(t *testing.T) {
	env := simEnvelope(t, 1)
	r := Verify(env, policy(t, ""), Options{Nonce: testNonce, Now: time.Now()})
	if r.Status != Affirming || !r.Insecure || !strings.Contains(strings.Join(r.Reasons, " "), "insecure") {
		t.Fatalf("%+v", r)
	}
}

// TestTamperIsContraindicated: each way evidence can be wrong is refused
// with its own reason.
func TestTamperIsContraindicated(t *testing.T) {
	p := policy(t, "")
	for _, tc := range []struct {
		name   string
		change func(e *tee.Envelope, o *Options, p **Policy)
		reason string
	}{
		{"wrong nonce", func(e *tee.Envelope, o *Options, _ **Policy) { o.Nonce = []byte("other") }, "nonce"},
		{"replayed with a new nonce", func(e *tee.Envelope, o *Options, _ **Policy) { e.Nonce = []byte("fresh"); o.Nonce = e.Nonce }, "report data"},
		{"wrong measurement", func(e *tee.Envelope, _ *Options, _ **Policy) { e.Measurement = strings.Repeat("ab", 48) }, "not a reference value"},
		{"profile not allowed", func(e *tee.Envelope, _ *Options, _ **Policy) { e.Profile = "debug" }, "profile debug"},
		{"other runtime key", func(e *tee.Envelope, _ *Options, _ **Policy) { e.RuntimeKey = []byte("other") }, "report data"},
		{"flipped evidence byte", func(e *tee.Envelope, _ *Options, _ **Policy) { e.Evidence[10] ^= 1 }, "bad signature"},
		{"flipped signature", func(e *tee.Envelope, _ *Options, _ **Policy) { e.Collateral[0][0] ^= 1 }, "bad signature"},
		{"swapped key", func(e *tee.Envelope, _ *Options, _ **Policy) {
			e.Collateral[1] = ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
		}, "bad signature"},
		{"no allow_insecure", func(_ *tee.Envelope, _ *Options, p **Policy) { (*p).AllowInsecure = false }, "allow_insecure"},
		{"sim not a backend", func(_ *tee.Envelope, _ *Options, p **Policy) { (*p).Backends = []string{"sev-snp"} }, "backend sim"},
		{"expired", func(_ *tee.Envelope, o *Options, p **Policy) {
			(*p).MaxAge = time.Second
			o.Now = time.Now().Add(time.Hour)
		}, "max_age"},
		{"from the future", func(_ *tee.Envelope, o *Options, _ **Policy) { o.Now = time.Now().Add(-time.Hour) }, "future"},
		// Just past the minute of clock skew allowed: a bound widened
		// fourfold would let this through.
		{"two minutes from the future", func(_ *tee.Envelope, o *Options, _ **Policy) { o.Now = time.Now().Add(-2 * time.Minute) }, "future"},
		{"claims to be secure", func(e *tee.Envelope, _ *Options, _ **Policy) { e.Insecure = false }, "does not say it is insecure"},
		{"pinned key", func(_ *tee.Envelope, _ *Options, p **Policy) { (*p).SimKeys = []ed25519.PublicKey{make([]byte, 32)} }, "pins"},
		{"issue time changed", func(e *tee.Envelope, _ *Options, _ **Policy) { e.Issued = e.Issued.Add(-time.Minute) }, "issue time"},
		{"runtime key not P-256", func(e *tee.Envelope, _ *Options, _ **Policy) { e.RuntimeKey = []byte("runtime-public-key") }, "not a P-256 public key"},
		{"sim evidence for production", func(e *tee.Envelope, _ *Options, p **Policy) {
			e.Profile = "production"
			(*p).Profiles = []string{"production"}
		}, "never runs on it"},
		{"sim evidence called tdx", func(e *tee.Envelope, _ *Options, p **Policy) { e.Kind = "tdx"; (*p).Backends = []string{"tdx"} }, "does not verify"},
		{"sim evidence called sev-snp", func(e *tee.Envelope, _ *Options, p **Policy) { e.Kind = "sev-snp"; (*p).Backends = []string{"sev-snp"} }, "collateral"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := simEnvelope(t, 2)
			pp := *p
			pol := &pp
			o := Options{Nonce: testNonce, Now: time.Now()}
			tc.change(env, &o, &pol)
			r := Verify(env, pol, o)
			if r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "; "), tc.reason) {
				t.Errorf("got %s %v, want contraindicated for %q", r.Status, r.Reasons, tc.reason)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	m := hex.EncodeToString(testMeasurement[:])
	for _, bad := range []string{
		"",
		"profiles = [\"staging\"]\nbackends = [\"sim\"]\n",
		"measurements = [\"abc\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"kvm\"]\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nmax_age = \"soon\"\n",
		// A max_age of nothing, or less, is no bound a verdict could meet.
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nmax_age = \"0s\"\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nmax_age = \"-1m\"\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nunknown = 1\n",
		"measurements = \"" + m + "\"\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\ntdx_mrtds = [\"00\"]\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\ntdx_td_attributes = \"0000001000000000\"\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\ntdx_td_attributes = \"00\"\ntdx_td_attributes_mask = \"00\"\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\ntdx_mr_config_id = \"" + m[:94] + "\"\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\n[tdx_rtmrs]\nrtmr1 = \"xyz\"\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\n[tdx_rtmrs]\nrtmr3 = \"" + m + "\"\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sev-snp\"]\nsnp_host_data = \"" + m + "\"\n",
		"measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sev-snp\"]\nsnp_launch_measurements = [\"" + m[:64] + "\"]\n",
	} {
		if _, err := ParsePolicy([]byte(bad)); !errors.Is(err, ErrPolicy) {
			t.Errorf("ParsePolicy(%q) = %v", bad, err)
		}
	}
}

func TestEnvelopeRoundTripAndStrictness(t *testing.T) {
	env := simEnvelope(t, 3)
	data, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := tee.DecodeEnvelope(data)
	if err != nil {
		t.Fatal(err)
	}
	if r := Verify(back, policy(t, ""), Options{Nonce: testNonce, Now: time.Now()}); r.Status != Affirming {
		t.Errorf("a decoded envelope does not verify: %+v", r)
	}
	for name, bad := range map[string]string{
		"unknown field": strings.Replace(string(data), "{", "{\"extra\": 1,", 1),
		"two documents": string(data) + string(data),
		"version 2":     strings.Replace(string(data), "\"version\": 1", "\"version\": 2", 1),
		"not json":      "evidence",
	} {
		if _, err := tee.DecodeEnvelope([]byte(bad)); !errors.Is(err, tee.ErrEnvelope) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSealingKeyIsBoundToMeasurement(t *testing.T) {
	b := sim.New(ed25519.NewKeyFromSeed(make([]byte, 32)))
	k1, _ := b.SealingKey(context.Background(), testMeasurement)
	k2, _ := b.SealingKey(context.Background(), testMeasurement)
	k3, _ := b.SealingKey(context.Background(), [48]byte{9})
	if len(k1) != 32 || string(k1) != string(k2) || string(k1) == string(k3) {
		t.Error("the sealing key is not stable per measurement and distinct across them")
	}
}

// FuzzDecodeEnvelope: any bytes decode to an envelope whose fields hold
// their invariants, or fail with ErrEnvelope.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := tee.DecodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, tee.ErrEnvelope) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if _, err := e.ReportData(); err != nil || e.Version != tee.EnvelopeVersion || len(e.Nonce) == 0 {
			t.Fatalf("accepted a bad envelope: %+v %v", e, err)
		}
	})
}

// FuzzParsePolicy: any bytes parse to a usable policy or fail with ErrPolicy.
func FuzzParsePolicy(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if len(p.Measurements) == 0 || len(p.Profiles) == 0 || len(p.Backends) == 0 || p.MaxAge <= 0 || (p.SimKeysAny && len(p.SimKeys) > 0) {
			t.Fatalf("accepted a bad policy: %+v", p)
		}
		seen := map[[48]byte]bool{}
		for name, ms := range p.Bundles {
			for _, m := range ms {
				if seen[m] || !slices.Contains(p.Measurements, m) || !validBundleName(name) {
					t.Fatalf("accepted a bad [bundles]: %v", p.Bundles)
				}
				seen[m] = true
			}
		}
	})
}

// snpEnvelope makes SEV-SNP evidence with go-sev-guest's fake device (a
// test-only AMD chain; its reports set the debug bit).
func snpEnvelope(t *testing.T) (*tee.Envelope, Options) {
	t.Helper()
	rd := tee.ReportData(testMeasurement, testRuntimeKey, testNonce)
	b, roots, _ := snpfake.Backend(t, rd)
	ev, err := b.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	env := &tee.Envelope{
		Version: tee.EnvelopeVersion, Kind: snp.Kind, Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: hex.EncodeToString(testMeasurement[:]), Profile: "production", RuntimeKey: testRuntimeKey, Nonce: testNonce, Issued: snpfake.Now,
	}
	return env, Options{Nonce: testNonce, Now: snpfake.Now, SNPRoots: roots}
}

func snpPolicy(t *testing.T, extra string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(testMeasurement[:]) + "\"]\nprofiles = [\"production\"]\nbackends = [\"sev-snp\"]\nsnp_product = \"" + sevtest.GetProductName() + "\"\n" + extra))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSNPAttestVerify is the whole path attest -> verify on SEV-SNP
// evidence signed by a fake device, and its refusals.
func TestSNPAttestVerify(t *testing.T) {
	env, opts := snpEnvelope(t)
	if r := Verify(env, snpPolicy(t, "allow_debug = true\n[snp_min_tcb]\nsnp = 0\n"), opts); r.Status != Affirming {
		t.Fatalf("fake SEV-SNP evidence under a policy allowing debug: %+v", r)
	}
	// The platform's launch measurement and host data, pinned.
	claims, err := snp.Verify(env.Evidence, env.Collateral[0], snp.Options{Product: sevtest.GetProductName(), Now: opts.Now, Roots: opts.SNPRoots})
	if err != nil {
		t.Fatal(err)
	}
	pins := fmt.Sprintf("allow_debug = true\nsnp_launch_measurements = [%q]\nsnp_host_data = %q\n", hex.EncodeToString(claims.Measurement[:]), hex.EncodeToString(claims.HostData[:]))
	if r := Verify(env, snpPolicy(t, pins), opts); r.Status != Affirming {
		t.Fatalf("pinned launch measurement and host data: %+v", r)
	}
	for _, tc := range []struct {
		name   string
		change func(*tee.Envelope, *Options)
		extra  string
		reason string
	}{
		{"debug bit under a production policy", func(*tee.Envelope, *Options) {}, "", "allow_debug"},
		{"wrong nonce", func(_ *tee.Envelope, o *Options) { o.Nonce = []byte("other") }, "allow_debug = true\n", "nonce"},
		{"other runtime key", func(e *tee.Envelope, _ *Options) { e.RuntimeKey = []byte("x") }, "allow_debug = true\n", "report data"},
		{"flipped report byte", func(e *tee.Envelope, _ *Options) { e.Evidence[0x90] ^= 1 }, "allow_debug = true\n", "does not verify"},
		{"flipped signature", func(e *tee.Envelope, _ *Options) { e.Evidence[0x2a0] ^= 1 }, "allow_debug = true\n", "does not verify"},
		{"real AMD roots", func(_ *tee.Envelope, o *Options) { o.SNPRoots = nil }, "allow_debug = true\n", "does not verify"},
		{"no certificate", func(e *tee.Envelope, _ *Options) { e.Collateral = nil }, "allow_debug = true\n", "collateral"},
		{"TCB below the minimum", func(*tee.Envelope, *Options) {}, "allow_debug = true\n[snp_min_tcb]\nsnp = 1\n", "snp_min_tcb (snp 0 < 1)"},
		{"wrong measurement", func(e *tee.Envelope, _ *Options) { e.Measurement = strings.Repeat("cd", 48) }, "allow_debug = true\n", "report data"},
		{"launch measurement not pinned", func(*tee.Envelope, *Options) {}, "allow_debug = true\nsnp_launch_measurements = [\"" + strings.Repeat("cd", 48) + "\"]\n", "snp_launch_measurements"},
		{"host data", func(*tee.Envelope, *Options) {}, "allow_debug = true\nsnp_host_data = \"" + strings.Repeat("cd", 32) + "\"\n", "snp_host_data"},
		{"an RTMR event on SEV-SNP", func(e *tee.Envelope, _ *Options) {
			e.Event = &tee.Event{Register: 3, Before: make([]byte, 48), Digest: make([]byte, 48)}
		}, "allow_debug = true\n", "records an event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, opts := snpEnvelope(t)
			tc.change(env, &opts)
			r := Verify(env, snpPolicy(t, tc.extra), opts)
			if r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "; "), tc.reason) {
				t.Errorf("got %s %v, want contraindicated for %q", r.Status, r.Reasons, tc.reason)
			}
		})
	}
}

// TestSNPClassesAndSigners: fake-device reports with the guest policy's
// DEBUG bit clear verify as hardware, signed by the VCEK or (the table
// holding a VLEK and no VCEK, as a cloud provider's host gives it) by the
// VLEK; with DEBUG set they are refused unless the policy sets
// allow_debug, and then they are of the debug class, never hardware.
func TestSNPClassesAndSigners(t *testing.T) {
	rd := tee.ReportData(testMeasurement, testRuntimeKey, testNonce)
	for _, o := range []snpfake.Options{{}, {VLEK: true}, {Debug: true}, {Debug: true, VLEK: true}} {
		t.Run(fmt.Sprintf("debug=%v vlek=%v", o.Debug, o.VLEK), func(t *testing.T) {
			b, roots, _ := snpfake.BackendWith(t, rd, o)
			ev, err := b.Attest(context.Background(), rd)
			if err != nil {
				t.Fatal(err)
			}
			env := &tee.Envelope{
				Version: tee.EnvelopeVersion, Kind: snp.Kind, Evidence: ev.Raw, Collateral: ev.Collateral,
				Measurement: hex.EncodeToString(testMeasurement[:]), Profile: "production", RuntimeKey: testRuntimeKey, Nonce: testNonce, Issued: snpfake.Now,
			}
			opts := Options{Nonce: testNonce, Now: snpfake.Now, SNPRoots: roots}
			r := Verify(env, snpPolicy(t, ""), opts)
			if o.Debug {
				if r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "; "), "allow_debug") {
					t.Errorf("a debug report under a policy without allow_debug: %+v", r)
				}
				r = Verify(env, snpPolicy(t, "allow_debug = true\n"), opts)
			}
			want := map[bool]string{true: "debug", false: "hardware"}[o.Debug]
			if r.Status != Affirming || r.Debug != o.Debug || r.Class() != want {
				t.Errorf("got %s, class %s, reasons %v; want affirming, class %s", r.Status, r.Class(), r.Reasons, want)
			}
			if r := Verify(env, snpPolicy(t, "allow_debug = true\n"), Options{Nonce: testNonce, Now: snpfake.Now}); r.Status != Contraindicated {
				t.Errorf("test-only evidence against AMD's real roots: %+v", r)
			}
		})
	}
}

// tdxEnvelope makes TDX evidence through the real backend over a fake
// provider that signs quotes for the report data asked, with a test-only
// chain; body, if set, edits the quote's body before signing.
func tdxEnvelope(t *testing.T, body func(*tdxpb.TDQuoteBody)) (*tee.Envelope, Options) {
	t.Helper()
	fake := tdxfake.New(t)
	fake.Body = body
	rd := tee.ReportData(testMeasurement, testRuntimeKey, testNonce)
	ev, err := tdx.NewBackend(fake).Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	env := &tee.Envelope{
		Version: tee.EnvelopeVersion, Kind: tdx.Kind, Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: hex.EncodeToString(testMeasurement[:]), Profile: "production", RuntimeKey: testRuntimeKey, Nonce: testNonce, Issued: time.Now().UTC(),
	}
	return env, Options{Nonce: testNonce, Now: time.Now(), TDXRoots: fake.Roots()}
}

func tdxPolicy(t *testing.T, extra string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(testMeasurement[:]) + "\"]\nprofiles = [\"production\"]\nbackends = [\"tdx\"]\n" + extra))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTDXAttestVerify is the whole path attest -> verify on TDX: quotes
// signed for our report data by a fake provider behind the real backend
// verify as affirming, and every tamper is refused with its reason.
func TestTDXAttestVerify(t *testing.T) {
	env, opts := tdxEnvelope(t, nil)
	if r := Verify(env, tdxPolicy(t, ""), opts); r.Status != Affirming {
		t.Fatalf("fake TDX evidence: %+v", r)
	}
	debug := func(b *tdxpb.TDQuoteBody) { b.TdAttributes[0] |= 1 }
	oldTCB := func(b *tdxpb.TDQuoteBody) { b.TeeTcbSvn = make([]byte, 16) }
	for _, tc := range []struct {
		name   string
		body   func(*tdxpb.TDQuoteBody)
		change func(*tee.Envelope, *Options)
		extra  string
		reason string
	}{
		{"debug bit under a production policy", debug, func(*tee.Envelope, *Options) {}, "", "TUD.DEBUG"},
		{"TCB below the minimum", oldTCB, func(*tee.Envelope, *Options) {}, "tdx_min_tee_tcb_svn = \"01\"\n", "tdx_min_tee_tcb_svn"},
		{"wrong nonce", nil, func(_ *tee.Envelope, o *Options) { o.Nonce = []byte("other") }, "", "nonce"},
		{"other runtime key", nil, func(e *tee.Envelope, _ *Options) { e.RuntimeKey = []byte("x") }, "", "report data"},
		{"wrong measurement", nil, func(e *tee.Envelope, _ *Options) { e.Measurement = strings.Repeat("cd", 48) }, "", "report data"},
		{"profile not allowed", nil, func(e *tee.Envelope, _ *Options) { e.Profile = "staging" }, "", "profile staging"},
		{"flipped MRTD", nil, func(e *tee.Envelope, _ *Options) { e.Evidence[48+136] ^= 1 }, "", "does not verify"},
		{"flipped report data", nil, func(e *tee.Envelope, _ *Options) { e.Evidence[48+520] ^= 1 }, "", "does not verify"},
		{"flipped quote signature", nil, func(e *tee.Envelope, _ *Options) { e.Evidence[48+584+4+10] ^= 1 }, "", "does not verify"},
		{"flipped attestation key", nil, func(e *tee.Envelope, _ *Options) { e.Evidence[48+584+4+64+5] ^= 1 }, "", "does not verify"},
		{"flipped QE report", nil, func(e *tee.Envelope, _ *Options) { e.Evidence[48+584+4+128+6+100] ^= 1 }, "", "does not verify"},
		{"flipped chain byte", nil, func(e *tee.Envelope, _ *Options) { e.Evidence[len(e.Evidence)-200] ^= 1 }, "", "does not verify"},
		{"truncated", nil, func(e *tee.Envelope, _ *Options) { e.Evidence = e.Evidence[:len(e.Evidence)/2] }, "", "does not verify"},
		{"test chain against Intel's root", nil, func(_ *tee.Envelope, o *Options) { o.TDXRoots = nil }, "", "not Intel's"},
		{"backend not allowed", nil, func(*tee.Envelope, *Options) {}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, opts := tdxEnvelope(t, tc.body)
			tc.change(env, &opts)
			p := tdxPolicy(t, tc.extra)
			if tc.name == "backend not allowed" {
				p.Backends, tc.reason = []string{"sev-snp"}, "backend tdx"
			}
			r := Verify(env, p, opts)
			if r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "; "), tc.reason) {
				t.Errorf("got %s %v, want contraindicated for %q", r.Status, r.Reasons, tc.reason)
			}
		})
	}
	// Without a nonce, hardware evidence cannot be shown fresh: a warning,
	// never affirming.
	noNonce := opts
	noNonce.Nonce = nil
	if r := Verify(env, tdxPolicy(t, ""), noNonce); r.Status != Warning || !strings.Contains(strings.Join(r.Reasons, "; "), "freshness not judged") {
		t.Errorf("hardware evidence without a nonce: %+v", r)
	}
	// Version 5 quotes (TDX 1.5) take the same path.
	fake := tdxfake.New(t)
	fake.Version, fake.TD15 = 5, true
	ev, err := tdx.NewBackend(fake).Attest(context.Background(), tee.ReportData(testMeasurement, testRuntimeKey, testNonce))
	if err != nil {
		t.Fatal(err)
	}
	v5, v5opts := tdxEnvelope(t, nil)
	v5.Evidence, v5opts.TDXRoots = ev.Raw, fake.Roots()
	if r := Verify(v5, tdxPolicy(t, ""), v5opts); r.Status != Affirming {
		t.Errorf("a version 5 quote: %+v", r)
	}
	v5.Evidence[60] ^= 1
	if r := Verify(v5, tdxPolicy(t, ""), v5opts); r.Status != Contraindicated {
		t.Errorf("a flipped version 5 quote: %+v", r)
	}
	// A quote replayed from another run under a fresh nonce: the report
	// data binds the old nonce.
	old, opts := tdxEnvelope(t, nil)
	old.Nonce = []byte("a fresh nonce from the verifier")
	opts.Nonce = old.Nonce
	if r := Verify(old, tdxPolicy(t, ""), opts); r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "; "), "report data") {
		t.Errorf("replayed quote: %s %v", r.Status, r.Reasons)
	}
}

// tdxExtendedEnvelope is TDX evidence of a run that extended RTMR3 first
// (go-configfs-tsm's fake registers, read by the signing fake).
func tdxExtendedEnvelope(t *testing.T) (*tee.Envelope, Options) {
	t.Helper()
	fake := tdxfake.New(t)
	regs := fakertmr.CreateRtmrSubsystem(t.TempDir())
	fake.Registers = regs
	b := tdx.NewBackend(fake).WithRTMR(regs, filepath.Join(t.TempDir(), "rtmr.lock"))
	// Another run extended RTMR3 before this one.
	if _, _, err := b.AttestExtended(context.Background(), [48]byte{9}, [64]byte{}); err != nil {
		t.Fatal(err)
	}
	rd := tee.ReportData(testMeasurement, testRuntimeKey, testNonce)
	ev, event, err := b.AttestExtended(context.Background(), testMeasurement, rd)
	if err != nil {
		t.Fatal(err)
	}
	env := &tee.Envelope{
		Version: tee.EnvelopeVersion, Kind: tdx.Kind, Evidence: ev.Raw, Event: event,
		Measurement: hex.EncodeToString(testMeasurement[:]), Profile: "production", RuntimeKey: testRuntimeKey, Nonce: testNonce, Issued: time.Now().UTC(),
	}
	return env, Options{Nonce: testNonce, Now: time.Now(), TDXRoots: fake.Roots()}
}

// TestTDXRuntimeRegisters: the run's measurement extended into RTMR3 as
// the last event, and the platform's MRTD, MRCONFIGID and RTMR0-2
// reference values.
func TestTDXRuntimeRegisters(t *testing.T) {
	env, opts := tdxExtendedEnvelope(t)
	claims, err := tdx.VerifyWith(env.Evidence, tdx.Options{Roots: opts.TDXRoots})
	if err != nil {
		t.Fatal(err)
	}
	pins := fmt.Sprintf("tdx_require_rtmr = true\ntdx_mrtds = [%q]\ntdx_mr_config_id = %q\ntdx_td_attributes = %q\ntdx_td_attributes_mask = \"ffffffffffffffff\"\n[tdx_rtmrs]\nrtmr0 = %q\nrtmr2 = %q\n",
		hex.EncodeToString(claims.MRTD[:]), hex.EncodeToString(claims.MRConfigID[:]), hex.EncodeToString(claims.TDAttributes), hex.EncodeToString(claims.RTMRs[0][:]), hex.EncodeToString(claims.RTMRs[2][:]))
	if r := Verify(env, tdxPolicy(t, pins), opts); r.Status != Affirming {
		t.Fatalf("extended run with pinned platform values: %+v", r)
	}
	other := strings.Repeat("ab", 48)
	for _, tc := range []struct {
		name   string
		change func(*tee.Envelope)
		extra  string
		reason string
	}{
		{"no event under tdx_require_rtmr", func(e *tee.Envelope) { e.Event = nil }, "tdx_require_rtmr = true\n", "no RTMR3 event"},
		{"TCB not judged under tdx_require_tcb_up_to_date", func(*tee.Envelope) {}, "tdx_require_tcb_up_to_date = true\n", "tdx_require_tcb_up_to_date"},
		{"event of another measurement", func(e *tee.Envelope) { d := tee.EventDigest([48]byte{9}); e.Event.Digest = d[:] }, "", "not the envelope's measurement"},
		{"altered before", func(e *tee.Envelope) { e.Event.Before = make([]byte, 48) }, "", "not the last thing extended"},
		{"another register", func(e *tee.Envelope) { e.Event.Register = 2 }, "", "extends RTMR2"},
		{"MRTD not pinned", func(*tee.Envelope) {}, "tdx_mrtds = [\"" + other + "\"]\n", "tdx_mrtds"},
		{"MRCONFIGID", func(*tee.Envelope) {}, "tdx_mr_config_id = \"" + other + "\"\n", "tdx_mr_config_id"},
		{"RTMR1", func(*tee.Envelope) {}, "[tdx_rtmrs]\nrtmr1 = \"" + other + "\"\n", "tdx_rtmrs.rtmr1"},
		{"TD attributes", func(*tee.Envelope) {}, "tdx_td_attributes = \"0000001000000000\"\ntdx_td_attributes_mask = \"0000003000000000\"\n", "tdx_td_attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, opts := tdxExtendedEnvelope(t)
			tc.change(env)
			r := Verify(env, tdxPolicy(t, tc.extra), opts)
			if r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "; "), tc.reason) {
				t.Errorf("got %s %v, want contraindicated for %q", r.Status, r.Reasons, tc.reason)
			}
		})
	}
	// Without the policy asking, a TDX quote with no event still affirms
	// (the report data binds the measurement either way).
	plain, opts := tdxEnvelope(t, nil)
	if r := Verify(plain, tdxPolicy(t, ""), opts); r.Status != Affirming {
		t.Errorf("no event, no requirement: %+v", r)
	}
	// An event on evidence without registers is refused.
	sim := simEnvelope(t, 0)
	sim.Event = env.Event
	if r := Verify(sim, policy(t, ""), Options{Nonce: testNonce, Now: time.Now()}); r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "; "), "records an event") {
		t.Errorf("sim evidence with an event: %s %v", r.Status, r.Reasons)
	}
}

// TestTDXVerify judges the real TDX quote go-tdx-guest ships: its signature
// chain holds, but its report data binds nothing of ours, so a verifier must
// refuse it; as must a flipped byte.
func TestTDXVerify(t *testing.T) {
	p, err := ParsePolicy([]byte("measurements = [\"" + hex.EncodeToString(testMeasurement[:]) + "\"]\nprofiles = [\"production\"]\nbackends = [\"tdx\"]\nallow_debug = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := &tee.Envelope{Version: 1, Kind: tdx.Kind, Evidence: append([]byte(nil), tdxtestdata.RawQuote...), Measurement: hex.EncodeToString(testMeasurement[:]),
		Profile: "production", RuntimeKey: testRuntimeKey, Nonce: testNonce, Issued: time.Now()}
	at := time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)
	r := Verify(env, p, Options{Nonce: testNonce, Now: at})
	reasons := strings.Join(r.Reasons, "; ")
	if r.Status != Contraindicated || !strings.Contains(reasons, "report data") || strings.Contains(reasons, "does not verify") {
		t.Errorf("real quote, foreign report data: %s %v", r.Status, r.Reasons)
	}
	p.TDXMinTeeTcbSvn = []byte{0xff}
	if r := Verify(env, p, Options{Nonce: testNonce, Now: at}); !strings.Contains(strings.Join(r.Reasons, "; "), "tdx_min_tee_tcb_svn") {
		t.Errorf("TEE TCB below the minimum: %v", r.Reasons)
	}
	p.TDXMinTeeTcbSvn = nil
	env.Evidence[48+136] ^= 1
	if r := Verify(env, p, Options{Nonce: testNonce, Now: at}); !strings.Contains(strings.Join(r.Reasons, "; "), "does not verify") {
		t.Errorf("flipped quote: %v", r.Reasons)
	}
}

// TestReportDataKnownAnswer: the report data a verifier recomputes is
// SHA-512("ampoule/report-data/v1" ‖ measurement ‖ runtime key ‖ nonce),
// fixed by a vector computed apart from this code: dropping the domain,
// or reordering or omitting a part, changes it.
func TestReportDataKnownAnswer(t *testing.T) {
	const (
		measurement = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f"
		runtimeKey  = "04404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
		nonce       = "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
		want        = "9fef2910307fff4cddf7f3d5adebdb84a42c1705eea62b3e4ae9e02d6fbdfb642727de825852e59b882eba44c2c7c1c7465617f669b5a2cf9d104257f6e481e9"
	)
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var m [48]byte
	copy(m[:], unhex(measurement))
	if got := tee.ReportData(m, unhex(runtimeKey), unhex(nonce)); hex.EncodeToString(got[:]) != want {
		t.Errorf("tee.ReportData = %x, want %s", got, want)
	}
	env := &tee.Envelope{Measurement: measurement, RuntimeKey: unhex(runtimeKey), Nonce: unhex(nonce)}
	if got, err := env.ReportData(); err != nil || hex.EncodeToString(got[:]) != want {
		t.Errorf("Envelope.ReportData = %x, %v, want %s", got, err, want)
	}
}

// TestHardwareEvidenceMarkedInsecure: an envelope of SEV-SNP or TDX
// evidence that says it is insecure is refused (a relying party would not
// know which class of secret it may have), as is simulator evidence that
// says it is not.
func TestHardwareEvidenceMarkedInsecure(t *testing.T) {
	snpEnv, snpOpts := snpEnvelope(t)
	snpEnv.Insecure = true
	tdxEnv, tdxOpts := tdxEnvelope(t, nil)
	tdxEnv.Insecure = true
	simEnv := simEnvelope(t, 3)
	simEnv.Insecure = false
	for name, tc := range map[string]struct {
		r      Result
		reason string
	}{
		"SEV-SNP marked insecure": {Verify(snpEnv, snpPolicy(t, "allow_debug = true\n"), snpOpts), "marked insecure"},
		"TDX marked insecure":     {Verify(tdxEnv, tdxPolicy(t, ""), tdxOpts), "marked insecure"},
		"simulator marked not so": {Verify(simEnv, policy(t, ""), Options{Nonce: testNonce, Now: time.Now()}), "does not say it is insecure"},
	} {
		if tc.r.Status != Contraindicated || !strings.Contains(strings.Join(tc.r.Reasons, "; "), tc.reason) {
			t.Errorf("%s: %s %v", name, tc.r.Status, tc.r.Reasons)
		}
	}
}

// TestSimKeysPinning: a policy accepting the simulator pins its keys, or
// says sim_keys = "any"; with neither, simulator evidence is a warning at
// best (anyone can make a simulator key), never affirming.
func TestSimKeysPinning(t *testing.T) {
	env := simEnvelope(t, 4)
	own := hex.EncodeToString(ed25519.NewKeyFromSeed(append(make([]byte, 31), 4)).Public().(ed25519.PublicKey))
	base := "measurements = [\"" + hex.EncodeToString(testMeasurement[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\n"
	for _, tc := range []struct {
		extra    string
		status   Status
		reason   string
		unpinned bool
	}{
		{"", Warning, "pins no simulator key", true},
		{"sim_keys = []\n", Warning, "pins no simulator key", true},
		{"sim_keys = [\"" + own + "\"]\n", Affirming, "insecure", false},
		{"sim_keys = \"any\"\n", Affirming, "insecure", false},
		{"sim_keys = [\"" + strings.Repeat("ab", 32) + "\"]\n", Contraindicated, "not one the policy pins", false},
	} {
		p, err := ParsePolicy([]byte(base + tc.extra))
		if err != nil {
			t.Fatalf("%q: %v", tc.extra, err)
		}
		r := Verify(env, p, Options{Nonce: testNonce, Now: time.Now()})
		if r.Status != tc.status || !strings.Contains(strings.Join(r.Reasons, "; "), tc.reason) || p.SimUnpinned() != tc.unpinned {
			t.Errorf("%q: %s %v, unpinned %v", tc.extra, r.Status, r.Reasons, p.SimUnpinned())
		}
	}
	for _, bad := range []string{"sim_keys = \"all\"\n", "sim_keys = 3\n", "sim_keys = [\"any\", \"" + own + "\"]\n", "sim_keys = [\"xyz\"]\n"} {
		if _, err := ParsePolicy([]byte(base + bad)); !errors.Is(err, ErrPolicy) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Without the simulator, or without allow_insecure, nothing needs a pin.
	for _, ok := range []string{
		"measurements = [\"" + hex.EncodeToString(testMeasurement[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\nallow_insecure = true\n",
		"measurements = [\"" + hex.EncodeToString(testMeasurement[:]) + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\n",
	} {
		if p, err := ParsePolicy([]byte(ok)); err != nil || p.SimUnpinned() {
			t.Errorf("%q: %v, unpinned %v", ok, err, p != nil && p.SimUnpinned())
		}
	}
}

// TestAuthentic: genuine evidence of each kind is authentic whatever it
// says, with no policy; evidence that binds another runtime key, nonce or
// measurement than its envelope says, or whose bytes were altered, is not.
func TestAuthentic(t *testing.T) {
	snpEnv, snpOpts := snpEnvelope(t)
	tdxEnv, tdxOpts := tdxEnvelope(t, nil)
	simEnv := simEnvelope(t, 4)
	for _, tc := range []struct {
		name string
		env  *tee.Envelope
		opts Options
	}{
		{"sim", simEnv, Options{Now: simEnv.Issued}},
		{"sev-snp", snpEnv, snpOpts},
		{"tdx", tdxEnv, tdxOpts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := Authentic(tc.env, tc.opts); r.Status == Contraindicated {
				t.Fatalf("genuine evidence: %+v", r)
			}
			other, _ := ecdh.P256().NewPrivateKey(bytes.Repeat([]byte{9}, 32))
			for what, change := range map[string]func(e *tee.Envelope){
				"runtime key": func(e *tee.Envelope) { e.RuntimeKey = other.PublicKey().Bytes() },
				"nonce":       func(e *tee.Envelope) { e.Nonce = []byte("another nonce") },
				"measurement": func(e *tee.Envelope) { e.Measurement = strings.Repeat("cd", 48) },
				"evidence": func(e *tee.Envelope) {
					e.Evidence = append([]byte(nil), e.Evidence...)
					e.Evidence[len(e.Evidence)/3] ^= 1
				},
			} {
				e := *tc.env
				change(&e)
				if r := Authentic(&e, tc.opts); r.Status != Contraindicated {
					t.Errorf("another %s: %+v", what, r)
				}
			}
		})
	}
}
