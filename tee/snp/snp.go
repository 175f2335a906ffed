// Package snp reads and verifies AMD SEV-SNP attestation reports with
// google/go-sev-guest: the report's signature by its VCEK, and the VCEK's
// chain to the AMD roots the library embeds, offline and at a given time.
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
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Kind is SEV-SNP's evidence kind.
const Kind = "sev-snp"

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

// Verify checks raw (a 1184-byte ATTESTATION_REPORT) against vcek (the
// VCEK or VLEK certificate, DER) and the embedded AMD roots, without the
// network, and returns its claims.
func Verify(raw, vcek []byte, opts Options) (*Claims, error) {
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
	att := &spb.Attestation{Report: report, CertificateChain: &spb.CertificateChain{VcekCert: vcek}}
	vopts := &verify.Options{DisableCertFetching: true, Now: now, Product: prod}
	if opts.Roots != nil {
		vopts.TrustedRoots = opts.Roots.m
	}
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
	}
	parts := kds.DecomposeTCBVersion(kds.TCBVersion(report.ReportedTcb))
	c.TCB = TCB{Bootloader: parts.BlSpl, TEE: parts.TeeSpl, SNP: parts.SnpSpl, Microcode: parts.UcodeSpl}
	copy(c.Measurement[:], report.Measurement)
	copy(c.ReportData[:], report.ReportData)
	copy(c.HostData[:], report.HostData)
	return c, nil
}
