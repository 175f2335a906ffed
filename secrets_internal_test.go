package ampoule

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/fakertmr"
	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/brokertest"
	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// TestSecretsFollowTheBackend: a TDX run (the signing fake behind the real
// backend) gets its secret from a broker whose grant names tdx, and the
// same run is refused (E3036) by a grant narrowed to sev-snp: the backend
// the broker judges is the evidence's, not one the host names.
func TestSecretsFollowTheBackend(t *testing.T) {
	srv, httpSrv := brokertest.Start(t)
	if err := srv.PutResource("default/tenant/api-key", []byte("tdx's secret")); err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, testwasm.Example(t, "secret-consumer"), "name = \"secret-consumer\"\nprofiles = [\"production\"]\n"+
		"[broker]\nurl = \""+httpSrv.URL+"\"\nkey = \""+hex.EncodeToString(srv.PublicKey())+"\"\n[secrets]\napi-key = \"default/tenant/api-key\"\n")
	b, err := loader.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	mm := loader.Measure(b, "production")
	fake := tdxfake.New(t)
	regs := fakertmr.CreateRtmrSubsystem(t.TempDir())
	fake.Registers = regs
	srv.Verify = attest.Options{TDXRoots: fake.Roots()}
	prod, _ := profiles.Get("production")
	secrets := func(backend string) (map[string][]byte, error) {
		p, err := attest.ParsePolicy([]byte("measurements = [\"" + mm.String() + "\"]\nprofiles = [\"production\"]\nbackends = [\"tdx\", \"sev-snp\"]\n" +
			"[[grants]]\nresources = [\"default/tenant/api-key\"]\nmeasurements = [\"" + mm.String() + "\"]\nbackends = [\"" + backend + "\"]\n"))
		if err != nil {
			t.Fatal(err)
		}
		srv.SetPolicy(p)
		r := newRun(prod, Config{Profile: "production", TEE: tdx.NewBackend(fake).WithRTMR(regs, filepath.Join(t.TempDir(), "rtmr.lock"))})
		r.kind = tee.KindTDX
		return r.secrets(context.Background(), b.Manifest, func() loader.Measurement { return mm }, hclog.NewNullLogger())
	}
	got, err := secrets("tdx")
	if err != nil || string(got["api-key"]) != "tdx's secret" {
		t.Fatalf("the TDX run's secret: %q, %v", got, err)
	}
	if got, err := secrets("sev-snp"); errcode.From(err).Code != errcode.SecretRefused || !strings.Contains(err.Error(), "on backend tdx") || got != nil {
		t.Errorf("a grant for sev-snp alone: %q, %v", got, err)
	}
	// Each run: its attestation, then its decision on the resource.
	records, _ := srv.Audit()
	if len(records) != 4 || records[0].Kind != tdx.Kind || records[1].Status != "affirming" || records[3].Status == "affirming" || records[2].Asked[0] != broker.TokenAsked {
		t.Errorf("the audit trail: %+v", records)
	}
}

// TestSecretsMeasureOnlyWhenDeclared: a bundle without [secrets] does not
// measure at the secrets step. The step comes before the runner starts,
// and measuring hashes the whole module: asked for here, the hash would
// no longer overlap the runner's start (a warm start's critical path).
func TestSecretsMeasureOnlyWhenDeclared(t *testing.T) {
	debug, err := profiles.Get("debug")
	if err != nil {
		t.Fatal(err)
	}
	r := newRun(debug, Config{})
	measured := 0
	measurement := func() loader.Measurement { measured++; return loader.Measurement{} }
	got, err := r.secrets(context.Background(), &loader.Manifest{}, measurement, hclog.NewNullLogger())
	if err != nil || got != nil {
		t.Fatalf("secrets of a manifest declaring none = %v, %v; want none, no error", got, err)
	}
	if measured != 0 {
		t.Fatalf("the secrets step measured %d times for a bundle declaring no secrets; want 0", measured)
	}
}
