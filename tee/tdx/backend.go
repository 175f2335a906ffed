package tdx

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-tdx-guest/client"

	"github.com/ampoule-run/ampoule/tee"
)

// Backend attests through a TDX quote provider: configfs-tsm or
// /dev/tdx_guest (Open), or any go-tdx-guest client.QuoteProvider, such as
// the library's test fakes.
type Backend struct {
	provider client.QuoteProvider
	rtmr     configfsi.Client
	lock     string
}

// NewBackend attests through p.
func NewBackend(p client.QuoteProvider) *Backend { return &Backend{provider: p} }

// Open finds the platform's quote provider. On a machine that is not a TDX
// guest it fails, saying so.
func Open() (*Backend, error) {
	p, err := client.GetQuoteProvider()
	if err != nil {
		return nil, fmt.Errorf("no TDX quote provider (%s or configfs-tsm; is this a TDX guest?): %w", tee.TDXGuestDevice, err)
	}
	if err := p.IsSupported(); err != nil {
		return nil, fmt.Errorf("no TDX quote provider (%s or configfs-tsm; is this a TDX guest?): %w", tee.TDXGuestDevice, err)
	}
	b := NewBackend(p)
	if c := openRTMR(); c != nil {
		b.WithRTMR(c, DefaultRTMRLock())
	}
	return b, nil
}

// Name implements tee.Backend.
func (b *Backend) Name() string { return Kind }

// Insecure implements tee.Backend: a TD is protected.
func (b *Backend) Insecure() bool { return false }

// Attest implements tee.Backend: a quote carrying reportData; the quote
// carries its own PCK certificate chain.
func (b *Backend) Attest(ctx context.Context, reportData [64]byte) (tee.Evidence, error) {
	raw, err := client.GetRawQuote(b.provider, reportData)
	if err != nil {
		return tee.Evidence{}, fmt.Errorf("TDX quote: %w", err)
	}
	return tee.Evidence{Raw: raw}, nil
}

// ErrNoSealingKey is what SealingKey returns: TDX gives a guest no key of
// its own to seal with, so sealed storage on TDX waits for a key the broker
// releases to the attested run.
var ErrNoSealingKey = errors.New("TDX has no local sealing key: sealing on TDX needs a key released by the broker")

// SealingKey implements tee.Backend; see ErrNoSealingKey.
func (b *Backend) SealingKey(ctx context.Context, measurement [48]byte) ([]byte, error) {
	return nil, ErrNoSealingKey
}
