// Package snpfake makes an SEV-SNP backend over go-sev-guest's fake guest
// device, which signs reports with a test-only AMD certificate chain, and
// the roots to verify them. Tests only: a test-only chain must never verify
// against AMD's real roots.
package snpfake

import (
	"testing"
	"time"

	labi "github.com/google/go-sev-guest/client/linuxabi"
	sevtest "github.com/google/go-sev-guest/testing"

	"github.com/ampoule-run/ampoule/tee/snp"
)

// Now is the time the fake chain is valid at.
var Now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Backend returns a backend that answers reportData (and only it) with a
// signed extended report, the roots that verify it, and the product name to
// verify with. Its reports set the guest policy's debug bit.
func Backend(t testing.TB, reportData [64]byte) (*snp.Backend, *snp.Roots, string) {
	t.Helper()
	dev, roots, product := device(t, reportData)
	return snp.NewBackend(dev), roots, product
}

// QuoteBackend is Backend through go-sev-guest's fake configfs-tsm quote
// provider, with no device: it attests but has no sealing key.
func QuoteBackend(t testing.TB, reportData [64]byte) (*snp.Backend, *snp.Roots, string) {
	t.Helper()
	dev, roots, product := device(t, reportData)
	return snp.NewQuoteBackend(&sevtest.QuoteProvider{Device: dev}, nil), roots, product
}

func device(t testing.TB, reportData [64]byte) (*sevtest.Device, *snp.Roots, string) {
	t.Helper()
	signer, err := sevtest.DefaultTestOnlyCertChain(sevtest.GetProductName(), Now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	req := snp.SealingRequest()
	key := sevtest.DerivedKeyRequestToString(&labi.SnpDerivedKeyReqABI{GuestFieldSelect: req.GuestFieldSelect.ABI()})
	dev, err := sevtest.TcDevice([]sevtest.TestCase{{Input: reportData, Output: sevtest.TestRawReport(reportData)}},
		&sevtest.DeviceOptions{Now: Now, Signer: signer, Product: sevtest.GetProduct(t), Keys: map[string][]byte{key: []byte("a 32-byte test-only derived key!")}})
	if err != nil {
		t.Fatal(err)
	}
	return dev, snp.NewRoots(sevtest.GetProductLine(), signer.Ark, signer.Ask), sevtest.GetProductName()
}
