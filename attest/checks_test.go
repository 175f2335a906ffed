package attest

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	tdxpb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/tdx"
	"github.com/ampoule-run/ampoule/vm/initdata"
)

// simEnvelopeOf makes real simulator evidence binding measurement m and
// runtime key rk (which need not be a P-256 point) under the test nonce.
func simEnvelopeOf(t *testing.T, m [48]byte, rk []byte) *tee.Envelope {
	t.Helper()
	b := sim.New(ed25519.NewKeyFromSeed(append(make([]byte, 31), 5)))
	ev, err := b.Attest(context.Background(), tee.ReportData(m, rk, testNonce))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sim.Verify(ev)
	if err != nil {
		t.Fatal(err)
	}
	return &tee.Envelope{
		Version: tee.EnvelopeVersion, Kind: sim.Kind, Insecure: true, Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: hex.EncodeToString(m[:]), Profile: "staging", RuntimeKey: rk, Nonce: testNonce, Issued: c.Issued,
	}
}

// otherP256 is a valid runtime key the test evidence does not bind.
func otherP256() []byte {
	k, err := ecdh.P256().NewPrivateKey(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		panic(err)
	}
	return k.PublicKey().Bytes()
}

// checkCase is an envelope, policy and options that break exactly one
// check, named by the list it is in and its name.
type checkCase struct {
	list, check string
	make        func(t *testing.T) (*tee.Envelope, *Policy, Options)
	reason      string
	// informative: the check only names why others fail, so that
	// breaking it alone leaves the verdict as it was.
	informative bool
}

func simCase(change func(e *tee.Envelope, p *Policy, o *Options)) func(t *testing.T) (*tee.Envelope, *Policy, Options) {
	return func(t *testing.T) (*tee.Envelope, *Policy, Options) {
		e, p, o := simEnvelope(t, 6), policy(t, ""), Options{Nonce: testNonce, Now: time.Now()}
		change(e, p, &o)
		return e, p, o
	}
}

func snpCase(extra string, change func(e *tee.Envelope, p *Policy)) func(t *testing.T) (*tee.Envelope, *Policy, Options) {
	return func(t *testing.T) (*tee.Envelope, *Policy, Options) {
		e, o := snpEnvelope(t)
		p := snpPolicy(t, "allow_debug = true\n"+extra)
		change(e, p)
		return e, p, o
	}
}

func tdxCase(body func(*tdxpb.TDQuoteBody), change func(e *tee.Envelope, p *Policy)) func(t *testing.T) (*tee.Envelope, *Policy, Options) {
	return func(t *testing.T) (*tee.Envelope, *Policy, Options) {
		e, o := tdxEnvelope(t, body)
		p := tdxPolicy(t, "")
		change(e, p)
		return e, p, o
	}
}

func tdxEventCase(change func(e *tee.Envelope, p *Policy)) func(t *testing.T) (*tee.Envelope, *Policy, Options) {
	return func(t *testing.T) (*tee.Envelope, *Policy, Options) {
		e, o := tdxExtendedEnvelope(t)
		p := tdxPolicy(t, "")
		change(e, p)
		return e, p, o
	}
}

var other48 = [48]byte{0xab}

func checkCases() []checkCase {
	return []checkCase{
		{"", "envelope version", simCase(func(e *tee.Envelope, _ *Policy, _ *Options) { e.Version = 2 }), "envelope version 2", false},
		{"", "backend accepted", simCase(func(_ *tee.Envelope, p *Policy, _ *Options) { p.Backends = []string{tdx.Kind} }), "backend sim", false},
		{"", "report data computable", simCase(func(e *tee.Envelope, _ *Policy, _ *Options) { e.Measurement = "xyz" }), "not 96 hex digits", true},
		{"", "runtime key", func(t *testing.T) (*tee.Envelope, *Policy, Options) {
			e := simEnvelopeOf(t, testMeasurement, []byte("not a point"))
			return e, policy(t, ""), Options{Nonce: testNonce, Now: time.Now()}
		}, "not a P-256 public key", false},
		{"", "evidence", simCase(func(e *tee.Envelope, p *Policy, _ *Options) { e.Kind, p.Backends = "kvm", []string{"kvm"} }), "unknown evidence kind \"kvm\"", false},
		{"", "event only with registers", simCase(func(e *tee.Envelope, _ *Policy, _ *Options) {
			e.Event = &tee.Event{Register: 3, Before: make([]byte, 48), Digest: make([]byte, 48)}
		}), "records an event", false},
		{"", "nonce", simCase(func(_ *tee.Envelope, _ *Policy, o *Options) { o.Nonce = []byte("other") }), "nonce is not the one", false},
		{"", "reference measurement", func(t *testing.T) (*tee.Envelope, *Policy, Options) {
			return simEnvelopeOf(t, other48, testRuntimeKey), policy(t, ""), Options{Nonce: testNonce, Now: time.Now()}
		}, "is not a reference value", false},
		{"", "profile accepted", simCase(func(e *tee.Envelope, _ *Policy, _ *Options) { e.Profile = "debug" }), "profile debug", false},
		{"", "init-data names the run", simCase(func(e *tee.Envelope, _ *Policy, _ *Options) {
			e.InitData = initDataOf(strings.Repeat("00", 48), e.Profile)
		}), "init-data names", false},
		{"", "fresh", simCase(func(_ *tee.Envelope, p *Policy, o *Options) { p.MaxAge, o.Now = time.Second, time.Now().Add(time.Hour) }), "more than max_age 1s", false},
		{"", "fresh", simCase(func(_ *tee.Envelope, _ *Policy, o *Options) { o.Now = time.Now().Add(-2 * time.Minute) }), "in the future", false},
		{"", "fresh", simCase(func(e *tee.Envelope, _ *Policy, _ *Options) { e.Issued = e.Issued.Add(time.Second) }), "issue time", false},

		{"sim envelope", "allow_insecure", simCase(func(_ *tee.Envelope, p *Policy, _ *Options) { p.AllowInsecure = false }), "allow_insecure", false},
		{"sim envelope", "marked insecure", simCase(func(e *tee.Envelope, _ *Policy, _ *Options) { e.Insecure = false }), "does not say it is insecure", false},
		{"sim envelope", "profile runs on the simulator", simCase(func(e *tee.Envelope, p *Policy, _ *Options) {
			e.Profile, p.Profiles = "production", []string{"production"}
		}), "never runs on it", false},
		{"sim", "sim_keys", simCase(func(_ *tee.Envelope, p *Policy, _ *Options) { p.SimKeys = []ed25519.PublicKey{make([]byte, 32)} }), "not one the policy pins", false},
		{"sim", "report data bound", simCase(func(e *tee.Envelope, _ *Policy, o *Options) { e.Nonce = []byte("fresh"); o.Nonce = e.Nonce }), "report data", false},

		{"sev-snp", "report data bound", snpCase("", func(e *tee.Envelope, _ *Policy) { e.RuntimeKey = otherP256() }), "report data", false},
		{"sev-snp", "allow_debug", snpCase("", func(_ *tee.Envelope, p *Policy) { p.AllowDebug = false }), "allow_debug", false},
		{"sev-snp", "not marked insecure", snpCase("", func(e *tee.Envelope, _ *Policy) { e.Insecure = true }), "SEV-SNP evidence marked insecure", false},
		{"sev-snp", "snp_min_tcb", snpCase("[snp_min_tcb]\nsnp = 1\n", func(*tee.Envelope, *Policy) {}), "snp_min_tcb (snp 0 < 1)", false},
		{"sev-snp", "snp_launch_measurements", snpCase("", func(_ *tee.Envelope, p *Policy) { p.SNPLaunchMeasurements = [][48]byte{other48} }), "snp_launch_measurements", false},
		{"sev-snp", "init-data is HOST_DATA's", snpCase("", func(e *tee.Envelope, _ *Policy) { e.InitData = initDataOf(e.Measurement, e.Profile) }), "SHA-256 of the envelope's init-data", false},
		{"sev-snp", "snp_host_data", snpCase("", func(_ *tee.Envelope, p *Policy) { p.SNPHostData = &[32]byte{1} }), "snp_host_data", false},

		{"tdx", "report data bound", tdxCase(nil, func(e *tee.Envelope, _ *Policy) { e.RuntimeKey = otherP256() }), "report data", false},
		{"tdx", "allow_debug", tdxCase(func(b *tdxpb.TDQuoteBody) { b.TdAttributes[0] |= 1 }, func(*tee.Envelope, *Policy) {}), "TUD.DEBUG", false},
		{"tdx", "not marked insecure", tdxCase(nil, func(e *tee.Envelope, _ *Policy) { e.Insecure = true }), "TDX evidence marked insecure", false},
		{"tdx", "tdx_min_tee_tcb_svn", tdxCase(func(b *tdxpb.TDQuoteBody) { b.TeeTcbSvn = make([]byte, 16) }, func(_ *tee.Envelope, p *Policy) { p.TDXMinTeeTcbSvn = []byte{0, 1} }), "tdx_min_tee_tcb_svn 0001", false},
		{"tdx", "tdx_require_tcb_up_to_date", tdxCase(nil, func(_ *tee.Envelope, p *Policy) { p.TDXRequireTCBUpToDate = true }), "tdx_require_tcb_up_to_date", false},
		{"tdx", "tdx_mrtds", tdxCase(nil, func(_ *tee.Envelope, p *Policy) { p.TDXMRTDs = [][48]byte{other48} }), "tdx_mrtds", false},
		{"tdx", "tdx_td_attributes", tdxCase(nil, func(_ *tee.Envelope, p *Policy) {
			p.TDXTDAttributes = &TDAttributes{Value: [8]byte{3: 0x10}, Mask: [8]byte{3: 0x30}}
		}), "under mask 0000003000000000 are not the policy's tdx_td_attributes 0000001000000000", false},
		{"tdx", "init-data is MRCONFIGID's", tdxCase(nil, func(e *tee.Envelope, _ *Policy) { e.InitData = initDataOf(e.Measurement, e.Profile) }), "SHA-384 of the envelope's init-data", false},
		{"tdx", "tdx_mr_config_id", tdxCase(nil, func(_ *tee.Envelope, p *Policy) { p.TDXMRConfigID = &other48 }), "tdx_mr_config_id", false},
		{"tdx", "tdx_rtmrs", tdxCase(nil, func(_ *tee.Envelope, p *Policy) { p.TDXRTMRs[2] = &other48 }), "tdx_rtmrs.rtmr2", false},
		{"tdx", "rtmr3 event", tdxCase(nil, func(_ *tee.Envelope, p *Policy) { p.TDXRequireRTMR = true }), "no RTMR3 event", false},
		{"tdx", "rtmr3 event", tdxEventCase(func(e *tee.Envelope, _ *Policy) { e.Event.Register = 2 }), "extends RTMR2", false},
		{"tdx", "rtmr3 event", tdxEventCase(func(e *tee.Envelope, _ *Policy) { e.Event.Digest = bytes.Repeat([]byte{1}, 48) }), "not the envelope's measurement", false},
		{"tdx", "rtmr3 event", tdxEventCase(func(e *tee.Envelope, _ *Policy) { e.Event.Before = make([]byte, 48) }), "not the last thing extended", false},
	}
}

// initDataOf is an init-data document naming measurement under profile.
func initDataOf(measurement, profile string) []byte {
	doc, err := (&initdata.Document{Version: initdata.Version, Measurement: measurement, Profile: profile}).Encode()
	if err != nil {
		panic(err)
	}
	return doc
}

// disable makes the named check hold whatever it is given, until the test
// ends.
func disable(t *testing.T, list, name string) {
	t.Helper()
	var ok bool
	switch list {
	case "":
		ok = disableCheck(t, checks, name)
	case "sim envelope":
		ok = disableCheck(t, simEnvelopeChecks, name)
	case "sim":
		ok = disableClaimCheck(t, simChecks, name)
	case "sev-snp":
		ok = disableClaimCheck(t, snpChecks, name)
	case "tdx":
		ok = disableClaimCheck(t, tdxChecks, name)
	}
	if !ok {
		t.Fatalf("no check %q in list %q", name, list)
	}
}

func disableCheck(t *testing.T, list []check, name string) bool {
	i := slices.IndexFunc(list, func(c check) bool { return c.name == name })
	if i < 0 {
		return false
	}
	run := list[i].run
	list[i].run = func(*judgment) []string { return nil }
	t.Cleanup(func() { list[i].run = run })
	return true
}

func disableClaimCheck[C any](t *testing.T, list []claimCheck[C], name string) bool {
	i := slices.IndexFunc(list, func(c claimCheck[C]) bool { return c.name == name })
	if i < 0 {
		return false
	}
	run := list[i].run
	list[i].run = func(*judgment, *C) []string { return nil }
	t.Cleanup(func() { list[i].run = run })
	return true
}

// TestEachCheckDecides: for every check Verify composes, an envelope that
// breaks that check alone is contraindicated with that check's reason as
// its only one, and with the check broken (made to hold whatever it is
// given) the same envelope is no longer contraindicated: no other check
// stands in for it. The report-data check alone only names why the
// binding and measurement checks fail. Every check in every list has a
// case, so a check added without one fails here.
func TestEachCheckDecides(t *testing.T) {
	cases := checkCases()
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.list+"/"+tc.check] = true
		t.Run(tc.list+"/"+tc.check+"/"+tc.reason, func(t *testing.T) {
			env, p, opts := tc.make(t)
			r := Verify(env, p, opts)
			if r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "; "), tc.reason) {
				t.Fatalf("got %s %q, want contraindicated for %q", r.Status, r.Reasons, tc.reason)
			}
			if tc.informative {
				return
			}
			if len(r.Reasons) != 1 {
				t.Fatalf("want the one reason %q, got %q", tc.reason, r.Reasons)
			}
			disable(t, tc.list, tc.check)
			env, p, opts = tc.make(t)
			if r := Verify(env, p, opts); r.Status == Contraindicated {
				t.Errorf("with %s/%s broken the verdict is still contraindicated: %q", tc.list, tc.check, r.Reasons)
			}
		})
	}
	for list, names := range map[string][]string{
		"":             namesOf(checks),
		"sim envelope": namesOf(simEnvelopeChecks),
		"sim":          claimNamesOf(simChecks),
		"sev-snp":      claimNamesOf(snpChecks),
		"tdx":          claimNamesOf(tdxChecks),
	} {
		for _, n := range names {
			if !covered[list+"/"+n] {
				t.Errorf("check %s/%s has no case", list, n)
			}
		}
	}
}

func namesOf(list []check) (names []string) {
	for _, c := range list {
		names = append(names, c.name)
	}
	return names
}

func claimNamesOf[C any](list []claimCheck[C]) (names []string) {
	for _, c := range list {
		names = append(names, c.name)
	}
	return names
}

// TestReportDataNeverBindsABadEnvelope: an envelope whose measurement is
// not hex cannot make report data, so no evidence binds it, not even
// evidence carrying the zero report data a failed recomputation leaves.
func TestReportDataNeverBindsABadEnvelope(t *testing.T) {
	b := sim.New(ed25519.NewKeyFromSeed(make([]byte, 32)))
	ev, err := b.Attest(context.Background(), [64]byte{})
	if err != nil {
		t.Fatal(err)
	}
	env := simEnvelope(t, 6)
	env.Evidence, env.Collateral, env.Measurement = ev.Raw, ev.Collateral, "not hex"
	c, err := sim.Verify(ev)
	if err != nil {
		t.Fatal(err)
	}
	env.Issued = c.Issued
	r := Verify(env, policy(t, ""), Options{Nonce: testNonce, Now: time.Now()})
	if r.Status != Contraindicated || !slices.Contains(r.Reasons, "the report data does not bind this measurement, runtime key and nonce") {
		t.Errorf("zero report data under a bad measurement: %s %q", r.Status, r.Reasons)
	}
}

// TestVerifyWithoutPolicy: no policy, or no envelope, is refused, never a
// panic.
func TestVerifyWithoutPolicy(t *testing.T) {
	if r := Verify(simEnvelope(t, 6), nil, Options{Nonce: testNonce, Now: time.Now()}); r.Status != Contraindicated {
		t.Errorf("no policy: %+v", r)
	}
	if r := Verify(nil, policy(t, ""), Options{Nonce: testNonce, Now: time.Now()}); r.Status != Contraindicated {
		t.Errorf("no envelope: %+v", r)
	}
}
