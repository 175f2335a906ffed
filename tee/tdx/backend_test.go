package tdx

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/fakertmr"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	tdxtest "github.com/google/go-tdx-guest/testing"
	"github.com/google/go-tdx-guest/testing/testdata"

	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/tee"
)

// TestBackendOverFakeProvider: the backend gets a quote through
// go-tdx-guest's fake provider, which replays the real quote the library
// ships whatever it is asked: the quote's chain verifies, but its report data
// is not the one requested, which is exactly what attest.Verify checks.
func TestBackendOverFakeProvider(t *testing.T) {
	tcs := tdxtest.TestCases()
	p, err := tdxtest.TcQuoteProvider(tcs)
	if err != nil {
		t.Fatal(err)
	}
	b := NewBackend(p)
	if b.Name() != "tdx" || b.Insecure() {
		t.Fatal("a TDX backend must say tdx and secure")
	}
	ev, err := b.Attest(context.Background(), tcs[0].Input)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(ev.Raw, at)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReportData == tcs[0].Input || c.MRTD == ([48]byte{}) {
		t.Errorf("claims %+v: the replayed quote should carry its own report data", c)
	}
	if _, err := b.SealingKey(context.Background(), [48]byte{}); !errors.Is(err, ErrNoSealingKey) {
		t.Errorf("SealingKey: %v", err)
	}
}

// TestOpenWithoutDevice: off a TDX guest, Open fails and says why.
func TestOpenWithoutDevice(t *testing.T) {
	if _, err := os.Stat(tee.TDXGuestDevice); err == nil {
		return // a TDX guest: Open may succeed here
	}
	if _, err := Open(); err == nil || !strings.Contains(err.Error(), "is this a TDX guest?") {
		t.Errorf("Open without %s: %v", tee.TDXGuestDevice, err)
	}
}

// TestBackendOverSigningFake: through a fake that signs quotes for the
// report data it is asked (a test-only chain), the quote verifies against
// that chain's root and carries the requested report data; against Intel's
// root it is refused.
func TestBackendOverSigningFake(t *testing.T) {
	fake := tdxfake.New(t)
	var rd [64]byte
	copy(rd[:], "ampoule report data")
	ev, err := NewBackend(fake).Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := VerifyWith(ev.Raw, Options{Roots: fake.Roots()})
	if err != nil {
		t.Fatal(err)
	}
	if c.ReportData != rd || c.Version != 4 || c.Debug {
		t.Errorf("claims %+v", c)
	}
	if _, err := Verify(ev.Raw, time.Now()); err == nil || !strings.Contains(err.Error(), "not Intel's") {
		t.Errorf("a test-only chain against Intel's root: %v", err)
	}
}

// TestAttestExtended: each run extends RTMR3 (go-configfs-tsm's fake
// configfs, which does the hardware's SHA-384 chaining) and the quote's
// RTMR3 is the event's After; a second run's Before is the first's After.
func TestAttestExtended(t *testing.T) {
	fake := tdxfake.New(t)
	regs := fakertmr.CreateRtmrSubsystem(t.TempDir())
	fake.Registers = regs
	b := NewBackend(fake).WithRTMR(regs, filepath.Join(t.TempDir(), "rtmr.lock"))
	var prev [48]byte
	for i, m := range [][48]byte{{1}, {2}} {
		rd := [64]byte{byte(i)}
		ev, event, err := b.AttestExtended(context.Background(), m, rd)
		if err != nil {
			t.Fatal(err)
		}
		c, err := VerifyWith(ev.Raw, Options{Roots: fake.Roots()})
		if err != nil {
			t.Fatal(err)
		}
		d := tee.EventDigest(m)
		switch {
		case event.Register != RTMRIndex || !bytes.Equal(event.Digest, d[:]):
			t.Errorf("run %d: event %+v", i, event)
		case !bytes.Equal(event.Before, prev[:]):
			t.Errorf("run %d: before = %x, want %x", i, event.Before, prev)
		case c.RTMRs[RTMRIndex] != event.After():
			t.Errorf("run %d: quote's RTMR3 %x is not the event's after %x", i, c.RTMRs[RTMRIndex], event.After())
		case c.ReportData != rd:
			t.Errorf("run %d: report data", i)
		}
		prev = event.After()
	}
	if _, _, err := NewBackend(fake).AttestExtended(context.Background(), [48]byte{}, [64]byte{}); !errors.Is(err, ErrNoRTMR) {
		t.Errorf("a backend without RTMRs: %v", err)
	}
}

// TestQuotingEnclaveMustBeIntels: a QE report the PCK key signed, but of
// an enclave other than Intel's TD quoting enclave (another signer,
// product, or a debug enclave), does not vouch for the attestation key,
// in either quote version.
func TestQuotingEnclaveMustBeIntels(t *testing.T) {
	for name, edit := range map[string]func(*pb.EnclaveReport){
		"another signer":  func(r *pb.EnclaveReport) { r.MrSigner = bytes.Repeat([]byte{7}, 32) },
		"another product": func(r *pb.EnclaveReport) { r.IsvProdId = 1 },
		"debug enclave":   func(r *pb.EnclaveReport) { r.Attributes[0] |= 0x02 },
	} {
		for _, version := range []int{4, 5} {
			fake := tdxfake.New(t)
			fake.QE, fake.Version = edit, version
			raw, err := fake.GetRawQuote([64]byte{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := VerifyWith(raw, Options{Roots: fake.Roots()}); !errors.Is(err, ErrQuote) || !strings.Contains(err.Error(), "quoting enclave") {
				t.Errorf("%s, version %d: %v", name, version, err)
			}
		}
	}
}

// TestRTMRLockWaitsBoundedly: while another run holds the RTMR lock, a run
// waits for it only as long as its context allows, then says so.
func TestRTMRLockWaitsBoundedly(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "rtmr.lock")
	unlock, err := flock(context.Background(), lock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := flock(ctx, lock); err == nil || !strings.Contains(err.Error(), "held by another run") {
		t.Errorf("a held lock: %v", err)
	}
	unlock()
	again, err := flock(context.Background(), lock)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	again()
	os.Remove(lock)
	if err := os.Symlink("/etc/passwd", lock); err != nil {
		t.Fatal(err)
	}
	if _, err := flock(context.Background(), lock); err == nil {
		t.Error("the lock was taken through a link")
	}
}

// TestQuotingEnclaveAttributes: the QE report's attributes are judged
// under Intel's mask: setting or clearing any bit the mask covers (the
// first eight bytes but MODE64BIT) is refused, DEBUG with its own reason;
// the bits outside it (MODE64BIT, the XFRM bytes) may differ, as they do
// between platforms.
func TestQuotingEnclaveAttributes(t *testing.T) {
	fake := tdxfake.New(t)
	quote := func(edit func(*pb.EnclaveReport)) error {
		t.Helper()
		fake.QE = edit
		raw, err := fake.GetRawQuote([64]byte{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = VerifyWith(raw, Options{Roots: fake.Roots()})
		return err
	}
	for i := 0; i < 16; i++ {
		for bit := 0; bit < 8; bit++ {
			err := quote(func(r *pb.EnclaveReport) { r.Attributes[i] ^= 1 << bit })
			masked := i < 8 && !(i == 0 && bit == 2)
			switch {
			case i == 0 && bit == 1:
				if !errors.Is(err, ErrQuote) || !strings.Contains(err.Error(), "debug mode") {
					t.Errorf("DEBUG set: %v", err)
				}
			case masked && (!errors.Is(err, ErrQuote) || !strings.Contains(err.Error(), "attributes")):
				t.Errorf("byte %d bit %d, under the mask, flipped: %v", i, bit, err)
			case !masked && err != nil:
				t.Errorf("byte %d bit %d, outside the mask, flipped: %v", i, bit, err)
			}
		}
	}
	// The same in a version 5 quote.
	fake.Version = 5
	if err := quote(func(r *pb.EnclaveReport) { r.Attributes[0] |= 0x02 }); !errors.Is(err, ErrQuote) || !strings.Contains(err.Error(), "debug mode") {
		t.Errorf("version 5, DEBUG set: %v", err)
	}
	if err := quote(func(r *pb.EnclaveReport) { r.Attributes[3] ^= 0x80 }); !errors.Is(err, ErrQuote) || !strings.Contains(err.Error(), "attributes") {
		t.Errorf("version 5, a masked bit flipped: %v", err)
	}
}

// TestQuoteDebug: a launcher reads TD attribute DEBUG from its own quote,
// version 4 or 5, set or clear; a quote it cannot read is an error.
func TestQuoteDebug(t *testing.T) {
	for _, version := range []int{4, 5} {
		for _, debug := range []bool{true, false} {
			fake := tdxfake.New(t)
			fake.Version = version
			fake.Body = func(b *pb.TDQuoteBody) {
				b.TdAttributes[0] &^= 1
				if debug {
					b.TdAttributes[0] |= 1
				}
			}
			raw, err := fake.GetRawQuote([64]byte{})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := QuoteDebug(raw); err != nil || got != debug {
				t.Errorf("version %d, debug %v: %v %v", version, debug, got, err)
			}
			if c, err := VerifyWith(raw, Options{Roots: fake.Roots()}); err != nil || c.Debug != debug {
				t.Errorf("version %d, debug %v: claims say %v (%v)", version, debug, c != nil && c.Debug, err)
			}
		}
	}
	for _, raw := range [][]byte{nil, {5, 0}, testdata.RawQuote[:600]} {
		if _, err := QuoteDebug(raw); !errors.Is(err, ErrQuote) {
			t.Errorf("%d bytes: %v", len(raw), err)
		}
	}
}
