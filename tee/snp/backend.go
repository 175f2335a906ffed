package snp

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/ampoule-run/ampoule/tee"
)

// Backend attests through an SEV-SNP guest: configfs-tsm or /dev/sev-guest
// (Open), or any go-sev-guest client.QuoteProvider or client.Device, such
// as the library's test fakes. Sealing keys need the device: configfs-tsm
// gives reports only.
type Backend struct {
	qp  client.QuoteProvider
	dev client.Device
}

// NewBackend attests and derives sealing keys through dev.
func NewBackend(dev client.Device) *Backend { return &Backend{dev: dev} }

// NewQuoteBackend attests through qp (configfs-tsm's report interface on a
// guest) and, when dev is not nil, derives sealing keys through dev.
func NewQuoteBackend(qp client.QuoteProvider, dev client.Device) *Backend {
	return &Backend{qp: qp, dev: dev}
}

// ErrNoSealingDevice: the backend has no /dev/sev-guest to ask for a key.
var ErrNoSealingDevice = errors.New("SEV-SNP sealing keys need " + tee.SEVGuestDevice + " (MSG_KEY_REQ); configfs-tsm gives reports only")

// Open finds the guest's interfaces: configfs-tsm's report interface when
// the kernel offers it for sev_guest, and /dev/sev-guest, for reports where
// configfs-tsm is missing and for sealing keys. On a machine that is not an
// SEV-SNP guest it fails, saying so.
func Open() (*Backend, error) {
	dev, devErr := client.OpenDevice()
	if devErr != nil {
		dev = nil
	}
	if qp := (&client.LinuxConfigFsQuoteProvider{}); qp.IsSupported() {
		return NewQuoteBackend(qp, dev), nil
	}
	if dev == nil {
		return nil, fmt.Errorf("no SEV-SNP interface (%s or configfs-tsm with provider sev_guest; is this an SEV-SNP guest?): %w", tee.SEVGuestDevice, devErr)
	}
	return NewBackend(dev), nil
}

// Name implements tee.Backend.
func (b *Backend) Name() string { return Kind }

// Insecure implements tee.Backend: an SEV-SNP guest is protected.
func (b *Backend) Insecure() bool { return false }

// Attest implements tee.Backend with an extended report: the report and,
// from its certificate table, the certificate of the key the report says
// signed it: the VCEK, or on a cloud provider's machines (AWS) the VLEK.
// A table without that certificate is an error: the other one could not
// verify the report.
func (b *Backend) Attest(ctx context.Context, reportData [64]byte) (tee.Evidence, error) {
	var raw, certs []byte
	if b.qp != nil {
		quote, err := b.qp.GetRawQuote(reportData)
		if err != nil {
			return tee.Evidence{}, fmt.Errorf("SEV-SNP report through configfs-tsm: %w", err)
		}
		if len(quote) < abi.ReportSize {
			return tee.Evidence{}, fmt.Errorf("SEV-SNP report through configfs-tsm: %d bytes, shorter than a report", len(quote))
		}
		raw, certs = quote[:abi.ReportSize], quote[abi.ReportSize:]
	} else {
		var err error
		// The library's replacement, LinuxIoctlQuoteProvider, opens
		// /dev/sev-guest itself; only this call takes the Device the
		// backend was given (the guest's, or the library's fakes in tests).
		//lint:ignore SA1019 no QuoteProvider in go-sev-guest wraps a caller's Device
		if raw, certs, err = client.GetRawExtendedReport(b.dev, reportData); err != nil {
			return tee.Evidence{}, fmt.Errorf("SEV-SNP extended report: %w", err)
		}
	}
	key, err := signingCert(raw, certs)
	if err != nil {
		return tee.Evidence{}, err
	}
	return tee.Evidence{Raw: raw, Collateral: [][]byte{key}}, nil
}

// signingCert takes from an extended report's certificate table the
// certificate of the key the report names as its signer.
func signingCert(raw, certs []byte) ([]byte, error) {
	si, err := abi.ReportSignerInfo(raw)
	if err != nil {
		return nil, fmt.Errorf("SEV-SNP report: %w", err)
	}
	info, err := abi.ParseSignerInfo(si)
	if err != nil {
		return nil, fmt.Errorf("SEV-SNP report: %w", err)
	}
	guid := abi.VcekGUID
	switch info.SigningKey {
	case abi.VcekReportSigner:
	case abi.VlekReportSigner:
		guid = abi.VlekGUID
	default:
		return nil, fmt.Errorf("SEV-SNP report signed by %v, neither a VCEK nor a VLEK", info.SigningKey)
	}
	var table abi.CertTable
	if err := table.Unmarshal(certs); err != nil {
		return nil, fmt.Errorf("SEV-SNP certificate table: %w", err)
	}
	key, err := table.GetByGUIDString(guid)
	if err != nil {
		return nil, fmt.Errorf("the report is signed by its %v, and the certificate table has no %v certificate: %w", info.SigningKey, info.SigningKey, err)
	}
	return key, nil
}

// SealingKey implements tee.Backend: a key the AMD secure processor derives
// (MSG_KEY_REQ, from the VCEK, mixing in the guest's launch measurement and
// policy), then bound to the bundle's measurement with HKDF. It is the same
// on every run of the same VM image, bundle and TCB on this chip.
func (b *Backend) SealingKey(ctx context.Context, measurement [48]byte) ([]byte, error) {
	return b.DeriveKey(ctx, measurement, "sealing")
}

// DeriveKey implements tee.KeyDeriver: the key SealingRequest asks the
// AMD secure processor for, through HKDF-SHA256 with the measurement as
// salt and "ampoule/snp/LABEL/v1" as info.
func (b *Backend) DeriveKey(ctx context.Context, measurement [48]byte, label string) ([]byte, error) {
	if b.dev == nil {
		return nil, ErrNoSealingDevice
	}
	resp, err := client.GetDerivedKeyAcknowledgingItsLimitations(b.dev, SealingRequest())
	if err != nil {
		return nil, fmt.Errorf("SEV-SNP derived key: %w", err)
	}
	return hkdf.Key(sha256.New, resp.Data[:], measurement[:], "ampoule/snp/"+label+"/v1", 32)
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

// NewRoots trusts ark for product line, with ask certifying VCEKs and
// asvk (which may be nil: then no VLEK verifies) certifying VLEKs.
func NewRoots(productLine string, ark, ask, asvk *x509.Certificate) *Roots {
	return &Roots{m: map[string][]*trust.AMDRootCerts{productLine: {{
		ProductLine:  productLine,
		ProductCerts: &trust.ProductCerts{Ark: ark, Ask: ask, Asvk: asvk},
	}}}}
}
