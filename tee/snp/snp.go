// Package snp reads and verifies AMD SEV-SNP attestation reports with
// google/go-sev-guest: the report's signature by its VCEK (or a cloud
// provider's VLEK), and that key's chain to the AMD roots the library
// embeds, offline and at a given time.
package snp

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ampoule-run/ampoule/tee"
)

// Kind is SEV-SNP's evidence kind.
const Kind = tee.KindSNP

// policyDebug is the guest policy bit that allows a debugger (SNP ABI,
// GUEST_POLICY bit 19).
const policyDebug = 1 << 19

// Claims are what a verified report says.
type Claims struct {
	Version     uint32   `json:"version"`
	Measurement [48]byte `json:"-"`
	ReportData  [64]byte `json:"-"`
	HostData    [32]byte `json:"-"`
	Policy      uint64   `json:"policy"`
	Debug       bool     `json:"debug_allowed"`
	VMPL        uint32   `json:"vmpl"`
	CurrentTCB  uint64   `json:"current_tcb"`
	ReportedTCB uint64   `json:"reported_tcb"`
	ChipID      []byte   `json:"chip_id"`
	// Signer is the key that signed the report: SignerVCEK or SignerVLEK.
	Signer string `json:"signer"`
	// TCB is ReportedTCB in parts: the TCB the VCEK was issued for.
	TCB TCB `json:"tcb"`
}

// TCB is a TCB version's security patch levels (Milan and Genoa layout).
type TCB struct {
	Bootloader uint8 `json:"bootloader" toml:"bootloader"`
	TEE        uint8 `json:"tee" toml:"tee"`
	SNP        uint8 `json:"snp" toml:"snp"`
	Microcode  uint8 `json:"microcode" toml:"microcode"`
}

// AtLeast reports whether every level of t is at least min's, and names
// the first one that is not.
func (t TCB) AtLeast(min TCB) (bool, string) {
	for _, c := range []struct {
		name      string
		got, want uint8
	}{{"bootloader", t.Bootloader, min.Bootloader}, {"tee", t.TEE, min.TEE}, {"snp", t.SNP, min.SNP}, {"microcode", t.Microcode, min.Microcode}} {
		if c.got < c.want {
			return false, fmt.Sprintf("%s %d < %d", c.name, c.got, c.want)
		}
	}
	return true, ""
}

// Options say how to verify.
type Options struct {
	// Product is the processor line, "Milan", "Genoa" or "Turin", with an
	// optional stepping ("Milan-B1"; B0 otherwise). It selects the AMD roots.
	Product string
	// Now is when to judge the certificates' validity.
	Now time.Time
	// Roots, if set, replace the AMD roots go-sev-guest embeds.
	Roots *Roots
	// Chain, if not empty, is the product's certificate chain as AMD's KDS
	// serves it (PEM: the ASK, or the ASVK for a VLEK, then the ARK). Its
	// ARK must be the trusted one; its intermediate then replaces the
	// embedded one.
	Chain []byte
}

// ErrReport wraps every reason a report does not verify.
var ErrReport = errors.New("SEV-SNP report does not verify")

// product reads "Milan", "Genoa" or "Turin", optionally with a stepping
// ("Milan-B1"); without one the stepping is 0 (B0).
func product(name string) (*spb.SevProduct, error) {
	line, stepping, _ := strings.Cut(strings.ToLower(name), "-")
	var step uint32
	if stepping != "" {
		if len(stepping) != 2 || stepping[0] != 'b' || stepping[1] < '0' || stepping[1] > '9' {
			return nil, fmt.Errorf("%w: stepping %q is not B0 to B9", ErrReport, stepping)
		}
		step = uint32(stepping[1] - '0')
	}
	var p spb.SevProduct_SevProductName
	switch line {
	case "", "milan":
		p = spb.SevProduct_SEV_PRODUCT_MILAN
	case "genoa":
		p = spb.SevProduct_SEV_PRODUCT_GENOA
	case "turin":
		p = spb.SevProduct_SEV_PRODUCT_TURIN
	default:
		return nil, fmt.Errorf("%w: unknown product %q (Milan, Genoa or Turin)", ErrReport, name)
	}
	return &spb.SevProduct{Name: p, MachineStepping: &wrapperspb.UInt32Value{Value: step}}, nil
}

// ReportDebug reads whether a report's guest policy lets a debugger in
// (and so the host read the guest's memory), without verifying it: for a
// launcher judging the report its own device just gave it.
func ReportDebug(raw []byte) (bool, error) {
	report, err := abi.ReportToProto(raw)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrReport, err)
	}
	return report.Policy&policyDebug != 0, nil
}

// Verify checks raw (a 1184-byte ATTESTATION_REPORT) against cert (the
// VCEK or VLEK certificate that signed it, DER; which one is read from the
// certificate and must be the signer the report names) and AMD's roots:
// the ARK go-sev-guest embeds for the product line, with the ASK for a
// VCEK or the ASVK for a VLEK, or with opts.Chain's intermediate, which
// that ARK must certify. Everything is judged at opts.Now, without the
// network.
func Verify(raw, cert []byte, opts Options) (*Claims, error) {
	report, err := abi.ReportToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReport, err)
	}
	prod, err := product(opts.Product)
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	_, kind, err := endorsement(cert)
	if err != nil {
		return nil, err
	}
	info, err := abi.ParseSignerInfo(report.GetSignerInfo())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReport, err)
	}
	if info.SigningKey != kind {
		return nil, fmt.Errorf("%w: the report is signed by its %v, and the certificate given is a %v", ErrReport, info.SigningKey, kind)
	}
	line := kds.ProductLine(prod)
	pc, err := anchor(line, opts.Roots)
	if err != nil {
		return nil, err
	}
	if len(opts.Chain) > 0 {
		chain, err := ParseChain(opts.Chain)
		if err != nil {
			return nil, err
		}
		if err := withChain(pc, chain, line, kind, now); err != nil {
			return nil, err
		}
	}
	if kind == abi.VlekReportSigner && pc.Asvk == nil {
		return nil, fmt.Errorf("%w: no ASVK for %s to verify a VLEK with", ErrReport, line)
	}
	chain := &spb.CertificateChain{}
	if kind == abi.VlekReportSigner {
		chain.VlekCert = cert
	} else {
		chain.VcekCert = cert
	}
	att := &spb.Attestation{Report: report, CertificateChain: chain}
	vopts := &verify.Options{DisableCertFetching: true, Now: now, Product: prod,
		TrustedRoots: map[string][]*trust.AMDRootCerts{line: {{ProductLine: line, ProductCerts: pc}}}}
	if err := verify.SnpAttestation(att, vopts); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrReport, err)
	}
	c := &Claims{
		Version:     report.Version,
		Policy:      report.Policy,
		Debug:       report.Policy&policyDebug != 0,
		VMPL:        report.Vmpl,
		CurrentTCB:  report.CurrentTcb,
		ReportedTCB: report.ReportedTcb,
		ChipID:      report.ChipId,
		Signer:      info.SigningKey.String(),
	}
	parts := kds.DecomposeTCBVersion(kds.TCBVersion(report.ReportedTcb))
	c.TCB = TCB{Bootloader: parts.BlSpl, TEE: parts.TeeSpl, SNP: parts.SnpSpl, Microcode: parts.UcodeSpl}
	copy(c.Measurement[:], report.Measurement)
	copy(c.ReportData[:], report.ReportData)
	copy(c.HostData[:], report.HostData)
	return c, nil
}

// ReportHostData reads a report's HOST_DATA (what the host set at launch),
// without verifying the report: for a launcher judging the report its own
// device just gave it.
func ReportHostData(raw []byte) ([32]byte, error) {
	var out [32]byte
	report, err := abi.ReportToProto(raw)
	if err != nil {
		return out, fmt.Errorf("%w: %v", ErrReport, err)
	}
	copy(out[:], report.HostData)
	return out, nil
}
