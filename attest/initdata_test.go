package attest

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	tdxpb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/vm/initdata"
)

func testInitData(t *testing.T, measurement, profile string) []byte {
	t.Helper()
	doc, err := (&initdata.Document{Version: initdata.Version, Measurement: measurement, Profile: profile}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestVerifyInitData: an envelope carrying init-data affirms only when the
// report's launch field is the document's digest (SEV-SNP HOST_DATA its
// SHA-256, TDX MRCONFIGID its SHA-384) and the document names the
// envelope's measurement and profile.
func TestVerifyInitData(t *testing.T) {
	m := hex.EncodeToString(testMeasurement[:])
	doc := testInitData(t, m, "production")
	otherBundle := testInitData(t, strings.Repeat("00", 48), "production")
	otherProfile := testInitData(t, m, "staging")

	snpWith := func(hostData [32]byte, doc []byte) (*tee.Envelope, Options) {
		rd := tee.ReportData(testMeasurement, testRuntimeKey, testNonce)
		b, roots, _ := snpfake.AnyBackend(t, snpfake.Options{HostData: hostData})
		ev, err := b.Attest(context.Background(), rd)
		if err != nil {
			t.Fatal(err)
		}
		return &tee.Envelope{Version: tee.EnvelopeVersion, Kind: snp.Kind, Evidence: ev.Raw, Collateral: ev.Collateral,
			Measurement: m, Profile: "production", RuntimeKey: testRuntimeKey, Nonce: testNonce, Issued: snpfake.Now, InitData: doc,
		}, Options{Nonce: testNonce, Now: snpfake.Now, SNPRoots: roots}
	}
	tdxWith := func(id [48]byte, doc []byte) (*tee.Envelope, Options) {
		env, opts := tdxEnvelope(t, func(b *tdxpb.TDQuoteBody) { b.MrConfigId = id[:] })
		env.InitData = doc
		return env, opts
	}
	for _, c := range []struct {
		name   string
		env    func() (*tee.Envelope, Options)
		policy func() *Policy
		reason string
	}{
		{"snp bound", func() (*tee.Envelope, Options) { return snpWith(initdata.HostData(doc), doc) }, func() *Policy { return snpPolicy(t, "") }, ""},
		{"snp another document's HOST_DATA", func() (*tee.Envelope, Options) { return snpWith(initdata.HostData(otherBundle), doc) }, func() *Policy { return snpPolicy(t, "") }, "HOST_DATA"},
		{"snp no init-data", func() (*tee.Envelope, Options) { return snpWith(initdata.HostData(doc), nil) }, func() *Policy { return snpPolicy(t, "") }, ""},
		{"snp names another bundle", func() (*tee.Envelope, Options) { return snpWith(initdata.HostData(otherBundle), otherBundle) }, func() *Policy { return snpPolicy(t, "") }, "init-data names"},
		{"snp names another profile", func() (*tee.Envelope, Options) { return snpWith(initdata.HostData(otherProfile), otherProfile) }, func() *Policy { return snpPolicy(t, "") }, "init-data names"},
		{"snp malformed", func() (*tee.Envelope, Options) { return snpWith(initdata.HostData([]byte("x")), []byte("x")) }, func() *Policy { return snpPolicy(t, "") }, "init-data"},
		{"tdx bound", func() (*tee.Envelope, Options) { return tdxWith(initdata.MRConfigID(doc), doc) }, func() *Policy { return tdxPolicy(t, "") }, ""},
		{"tdx another document's MRCONFIGID", func() (*tee.Envelope, Options) { return tdxWith(initdata.MRConfigID(otherBundle), doc) }, func() *Policy { return tdxPolicy(t, "") }, "MRCONFIGID"},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, opts := c.env()
			r := Verify(env, c.policy(), opts)
			if c.reason == "" {
				if r.Status == Contraindicated {
					t.Fatalf("refused: %v", r.Reasons)
				}
				return
			}
			if r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "\n"), c.reason) {
				t.Fatalf("%v %v, want a reason naming %s", r.Status, r.Reasons, c.reason)
			}
		})
	}
}
