// Package snpfake makes an SEV-SNP backend over go-sev-guest's fake guest
// device, which signs reports with a test-only AMD certificate chain, and
// the roots to verify them. Tests only: a test-only chain must never verify
// against AMD's real roots.
package snpfake

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	sevtest "github.com/google/go-sev-guest/testing"

	"github.com/ampoule-run/ampoule/tee/snp"
)

// Now is the time the fake chain is valid at.
var Now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Options shape the fake device's reports.
type Options struct {
	// Debug sets the guest policy's DEBUG bit (19), which lets the host
	// read the guest's memory.
	Debug bool
	// VLEK signs the reports with the test-only VLEK, as a cloud
	// provider's machines do (version 3 reports, SIGNING_KEY = 1); the
	// certificate table then holds the VLEK and its ASVK only, no VCEK.
	VLEK bool
	// HostData is the reports' HOST_DATA, what the host set at launch
	// (AnyBackend's reports only).
	HostData [32]byte
}

// Backend returns a backend that answers reportData (and only it) with a
// signed extended report, the roots that verify it, and the product name to
// verify with. Its reports set the guest policy's debug bit.
func Backend(t testing.TB, reportData [64]byte) (*snp.Backend, *snp.Roots, string) {
	t.Helper()
	return BackendWith(t, reportData, Options{Debug: true})
}

// BackendWith is Backend with the reports opts describes.
func BackendWith(t testing.TB, reportData [64]byte, opts Options) (*snp.Backend, *snp.Roots, string) {
	t.Helper()
	dev, roots, product := Device(t, reportData, opts)
	return snp.NewBackend(dev), roots, product
}

// QuoteBackend is Backend through go-sev-guest's fake configfs-tsm quote
// provider, with no device: it attests but has no sealing key.
func QuoteBackend(t testing.TB, reportData [64]byte) (*snp.Backend, *snp.Roots, string) {
	t.Helper()
	dev, roots, product := Device(t, reportData, Options{Debug: true})
	return snp.NewQuoteBackend(&sevtest.QuoteProvider{Device: dev}, nil), roots, product
}

// AnyBackend is BackendWith for a device that answers any report data, as
// a real one does: for a run, whose report data binds a fresh runtime key
// and nonce.
func AnyBackend(t testing.TB, opts Options) (*snp.Backend, *snp.Roots, string) {
	t.Helper()
	dev, roots, product := Device(t, [64]byte{}, opts)
	template := dev.ReportDataRsp[hex.EncodeToString(make([]byte, 64))].(*sevtest.GetReportResponse).Resp.Data
	// HOST_DATA is at 0xC0 of ATTESTATION_REPORT (SEV-SNP ABI, table 23).
	copy(template[0xC0:0xE0], opts.HostData[:])
	return snp.NewBackend(&anyData{Device: dev, template: template}), roots, product
}

// anyData registers each request's report data with the device before the
// device answers it, in a report made from the template.
type anyData struct {
	*sevtest.Device
	template [labi.SnpReportRespReportSize]byte
}

// Ioctl implements client.Device.
func (d *anyData) Ioctl(command uintptr, req any) (uintptr, error) {
	if g, ok := req.(*labi.SnpUserGuestRequest); ok {
		var rd [64]byte
		switch r := g.ReqData.(type) {
		case *labi.SnpExtendedReportReq:
			rd = r.Data.ReportData
		case *labi.SnpReportReqABI:
			rd = r.ReportData
		}
		report := d.template
		copy(report[0x50:0x90], rd[:])
		d.ReportDataRsp[hex.EncodeToString(rd[:])] = &sevtest.GetReportResponse{Resp: labi.SnpReportRespABI{Data: report}}
	}
	return d.Device.Ioctl(command, req)
}

// Device is the fake guest device behind BackendWith, the roots that
// verify its reports and the product name to verify with.
func Device(t testing.TB, reportData [64]byte, opts Options) (*sevtest.Device, *snp.Roots, string) {
	t.Helper()
	signer, err := sevtest.DefaultTestOnlyCertChain(sevtest.GetProductName(), Now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ro := &sevtest.TestReportOptions{ReportData: reportData[:]}
	if opts.VLEK {
		ro.Version, ro.FMS = 3, abi.MaskedCpuid1EaxFromSevProduct(sevtest.GetProduct(t))
		ro.SignerInfo = abi.SignerInfo{SigningKey: abi.VlekReportSigner}
	}
	report := sevtest.CreateRawReport(ro)
	binary.LittleEndian.PutUint64(report[0x08:0x10], abi.SnpPolicyToBytes(abi.SnpPolicy{Debug: opts.Debug}))
	// The device answers only the request the SEV-SNP ABI defines for a
	// key from the VCEK (ROOT_KEY_SELECT 0) mixing in the guest policy
	// (GUEST_FIELD_SELECT bit 0) and the launch measurement (bit 3),
	// written out here rather than taken from the code under test.
	key := sevtest.DerivedKeyRequestToString(&labi.SnpDerivedKeyReqABI{RootKeySelect: 0, GuestFieldSelect: 1<<0 | 1<<3})
	dev, err := sevtest.TcDevice([]sevtest.TestCase{{Input: reportData, Output: report}},
		&sevtest.DeviceOptions{Now: Now, Signer: signer, Product: sevtest.GetProduct(t), Keys: map[string][]byte{key: []byte("a 32-byte test-only derived key!")}})
	if err != nil {
		t.Fatal(err)
	}
	if opts.VLEK {
		// As a cloud provider's host gives it: no VCEK in the table.
		dev.Certs = abi.CertsFromProto(&spb.CertificateChain{ArkCert: signer.Ark.Raw, VlekCert: signer.Vlek.Raw,
			Extras: map[string][]byte{abi.AsvkGUID: signer.Asvk.Raw}}).Marshal()
	}
	return dev, snp.NewRoots(sevtest.GetProductLine(), signer.Ark, signer.Ask, signer.Asvk), sevtest.GetProductName()
}
