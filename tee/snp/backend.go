package snp

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"fmt"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/ampoule-run/ampoule/tee"
)

// Backend attests through an SEV-SNP guest device: the real /dev/sev-guest
// (Open) or any client.Device, such as go-sev-guest's test fakes.
type Backend struct {
	dev client.Device
}

// NewBackend attests through dev.
func NewBackend(dev client.Device) *Backend { return &Backend{dev: dev} }

// Open opens /dev/sev-guest. On a machine that is not an SEV-SNP guest it
// fails, saying so.
func Open() (*Backend, error) {
	d, err := client.OpenDevice()
	if err != nil {
		return nil, fmt.Errorf("opening %s (is this an SEV-SNP guest?): %w", tee.SEVGuestDevice, err)
	}
	return NewBackend(d), nil
}

// Name implements tee.Backend.
func (b *Backend) Name() string { return Kind }

// Insecure implements tee.Backend: an SEV-SNP guest is protected.
func (b *Backend) Insecure() bool { return false }

// Attest implements tee.Backend with an extended report: the report and,
// from its certificate table, the VCEK (or VLEK) that signed it.
func (b *Backend) Attest(ctx context.Context, reportData [64]byte) (tee.Evidence, error) {
	raw, certs, err := client.GetRawExtendedReport(b.dev, reportData)
	if err != nil {
		return tee.Evidence{}, fmt.Errorf("SEV-SNP extended report: %w", err)
	}
	var table abi.CertTable
	if err := table.Unmarshal(certs); err != nil {
		return tee.Evidence{}, fmt.Errorf("SEV-SNP certificate table: %w", err)
	}
	key, err := table.GetByGUIDString(abi.VcekGUID)
	if err != nil {
		if key, err = table.GetByGUIDString(abi.VlekGUID); err != nil {
			return tee.Evidence{}, fmt.Errorf("the certificate table has no VCEK or VLEK: %w", err)
		}
	}
	return tee.Evidence{Raw: raw, Collateral: [][]byte{key}}, nil
}

// SealingKey implements tee.Backend: a key the AMD secure processor derives
// (MSG_KEY_REQ, from the VCEK, mixing in the guest's launch measurement and
// policy), then bound to the bundle's measurement with HKDF. It is the same
// on every run of the same VM image, bundle and TCB on this chip.
func (b *Backend) SealingKey(ctx context.Context, measurement [48]byte) ([]byte, error) {
	resp, err := client.GetDerivedKeyAcknowledgingItsLimitations(b.dev, SealingRequest())
	if err != nil {
		return nil, fmt.Errorf("SEV-SNP derived key: %w", err)
	}
	return hkdf.Key(sha256.New, resp.Data[:], measurement[:], "ampoule/snp/sealing/v1", 32)
}

// SealingRequest is the derived-key request SealingKey makes: a key from
// the VCEK that mixes in the guest's launch measurement and policy.
func SealingRequest() *client.SnpDerivedKeyReq {
	return &client.SnpDerivedKeyReq{
		UseVCEK:          true,
		GuestFieldSelect: client.GuestFieldSelect{Measurement: true, GuestPolicy: true},
	}
}

// Roots are AMD root certificates to verify against instead of the ones
// go-sev-guest embeds: for tests with its test-only signer.
type Roots struct {
	m map[string][]*trust.AMDRootCerts
}

// NewRoots trusts ark and ask for product line.
func NewRoots(productLine string, ark, ask *x509.Certificate) *Roots {
	return &Roots{m: map[string][]*trust.AMDRootCerts{productLine: {{
		ProductLine:  productLine,
		ProductCerts: &trust.ProductCerts{Ark: ark, Ask: ask},
	}}}}
}
