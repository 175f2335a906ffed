package snp_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/snp"
)

func TestBackendAttestVerify(t *testing.T) {
	rd := tee.ReportData([48]byte{7}, []byte("key"), []byte("nonce"))
	b, roots, product := snpfake.Backend(t, rd)
	if b.Name() != "sev-snp" || b.Insecure() {
		t.Fatal("an SEV-SNP backend must say sev-snp and secure")
	}
	ev, err := b.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := snp.Verify(ev.Raw, ev.Collateral[0], snp.Options{Product: product, Now: snpfake.Now, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if c.ReportData != rd || !c.Debug {
		t.Errorf("claims: report data %x, debug %v", c.ReportData, c.Debug)
	}
	// The same evidence against AMD's real roots is refused: a test-only
	// chain must never pass for real hardware.
	if _, err := snp.Verify(ev.Raw, ev.Collateral[0], snp.Options{Product: product, Now: snpfake.Now}); err == nil {
		t.Error("fake evidence verified against the embedded AMD roots")
	}
	key1, err1 := b.SealingKey(context.Background(), [48]byte{1})
	key2, err2 := b.SealingKey(context.Background(), [48]byte{2})
	if err1 != nil || err2 != nil || len(key1) != 32 || string(key1) == string(key2) {
		t.Errorf("sealing keys: %v %v", err1, err2)
	}
}

// TestOpenWithoutDevice: off an SEV-SNP guest, Open fails and says why.
func TestOpenWithoutDevice(t *testing.T) {
	if _, err := os.Stat(tee.SEVGuestDevice); err == nil {
		return // an SEV-SNP guest: Open may succeed here
	}
	if _, err := snp.Open(); err == nil || !strings.Contains(err.Error(), "is this an SEV-SNP guest?") {
		t.Errorf("Open without %s: %v", tee.SEVGuestDevice, err)
	}
}

// TestQuoteBackend: through configfs-tsm (go-sev-guest's fake quote
// provider) the report and its VCEK come from one blob and verify; with no
// device beside it there is no sealing key, and it says why.
func TestQuoteBackend(t *testing.T) {
	rd := tee.ReportData([48]byte{8}, []byte("key"), []byte("nonce"))
	b, roots, product := snpfake.QuoteBackend(t, rd)
	ev, err := b.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := snp.Verify(ev.Raw, ev.Collateral[0], snp.Options{Product: product, Now: snpfake.Now, Roots: roots})
	if err != nil {
		t.Fatal(err)
	}
	if c.ReportData != rd {
		t.Errorf("report data %x", c.ReportData)
	}
	if _, err := b.Attest(context.Background(), [64]byte{1}); err == nil {
		t.Error("the fake answered report data it was not given")
	}
	if _, err := b.SealingKey(context.Background(), [48]byte{1}); !errors.Is(err, snp.ErrNoSealingDevice) {
		t.Errorf("sealing key without a device: %v", err)
	}
}
