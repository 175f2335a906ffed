package ampoule_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/tdx"
	"github.com/ampoule-run/ampoule/vm/initdata"
)

// tinyInitData is the init-data naming testdata/tiny under profile.
func tinyInitData(t *testing.T, profile string) []byte {
	t.Helper()
	b, err := loader.Open("testdata/tiny")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := (&initdata.Document{Version: initdata.Version, Measurement: loader.Measure(b, profile).String(), Profile: profile}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// runWithInitData runs testdata/tiny under debug on be with the init-data
// doc, and returns what the workload printed.
func runWithInitData(t *testing.T, be tee.Backend, doc []byte) (string, *ampoule.Result, error) {
	t.Helper()
	var stdout, warnings bytes.Buffer
	res, err := ampoule.Run(context.Background(), "testdata/tiny", ampoule.Config{
		Profile: "debug", NoCache: true, TEE: be, InitData: doc, Stdout: &stdout, Warnings: &warnings,
		SimKey: filepath.Join(t.TempDir(), "sim.key"),
	})
	return stdout.String(), &res, err
}

// TestInitDataBoundToTheReport: a launcher handed init-data runs only
// when its own TEE's report carries the document's digest (SEV-SNP
// HOST_DATA = SHA-256, TDX MRCONFIGID = SHA-384), and its evidence
// carries the document. The held-back case: a report carrying another
// digest (the host handing over a document other than the VM's) is
// refused with E3021 before the workload prints anything.
func TestInitDataBoundToTheReport(t *testing.T) {
	doc := tinyInitData(t, "debug")
	other := append([]byte(nil), doc...)
	other[len(other)-2] ^= 1 // a byte of the profile line's quoted value
	fakeTDX := func(id [48]byte) tee.Backend {
		p := tdxfake.New(t)
		p.Body = func(b *pb.TDQuoteBody) { b.MrConfigId = id[:] }
		return tdx.NewBackend(p)
	}
	for _, c := range []struct {
		name string
		be   tee.Backend
		ok   bool
	}{
		{"sev-snp, HOST_DATA the digest", snpBackend(t, initdata.HostData(doc)), true},
		{"sev-snp, HOST_DATA another document's", snpBackend(t, initdata.HostData(other)), false},
		{"sev-snp, HOST_DATA zero", snpBackend(t, [32]byte{}), false},
		{"tdx, MRCONFIGID the digest", fakeTDX(initdata.MRConfigID(doc)), true},
		{"tdx, MRCONFIGID another document's", fakeTDX(initdata.MRConfigID(other)), false},
		{"tdx, MRCONFIGID the SHA-256 zero-padded", fakeTDX([48]byte(append(func() []byte { h := initdata.HostData(doc); return h[:] }(), make([]byte, 16)...))), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, res, err := runWithInitData(t, c.be, doc)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				if out == "" {
					t.Error("the workload printed nothing")
				}
				if res.Envelope == nil || !bytes.Equal(res.Envelope.InitData, doc) {
					t.Errorf("the evidence does not carry the init-data: %+v", res.Envelope)
				}
				return
			}
			if errcode.From(err).Code != errcode.InitDataMismatch {
				t.Fatalf("%v, want E3021", err)
			}
			if out != "" {
				t.Errorf("the workload ran: %q", out)
			}
		})
	}
}

func snpBackend(t *testing.T, hostData [32]byte) tee.Backend {
	be, _, _ := snpfake.AnyBackend(t, snpfake.Options{HostData: hostData})
	return be
}

// TestInitDataNamesTheBundle: init-data naming another measurement or
// another profile is refused with E3022 whatever the backend; a document
// that does not decode is E1072; on the simulator, which has no launch
// field, the run goes on and warns that nothing binds the document.
func TestInitDataNamesTheBundle(t *testing.T) {
	staging := tinyInitData(t, "staging")
	if _, _, err := runWithInitData(t, snpBackend(t, initdata.HostData(staging)), staging); errcode.From(err).Code != errcode.InitDataOtherBundle {
		t.Errorf("another profile's: %v", err)
	}
	otherBundle, err := (&initdata.Document{Version: initdata.Version, Measurement: strings.Repeat("00", 48), Profile: "debug"}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := runWithInitData(t, snpBackend(t, initdata.HostData(otherBundle)), otherBundle); errcode.From(err).Code != errcode.InitDataOtherBundle {
		t.Errorf("another bundle's: %v", err)
	}
	if _, _, err := runWithInitData(t, nil, []byte("version = 1\n")); errcode.From(err).Code != errcode.InitDataInvalid {
		t.Errorf("a document that does not decode: %v", err)
	}
	var warnings bytes.Buffer
	_, err = ampoule.Run(context.Background(), "testdata/tiny", ampoule.Config{
		Profile: "debug", Backend: "sim", NoCache: true, InitData: tinyInitData(t, "debug"), Stdout: &bytes.Buffer{}, Warnings: &warnings,
		SimKey: filepath.Join(t.TempDir(), "sim.key"),
	})
	if err != nil || !strings.Contains(warnings.String(), ampoule.WarningInitDataUnbound) {
		t.Errorf("on the simulator: %v, warnings %q", err, warnings.String())
	}
}
