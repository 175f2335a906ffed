package kbs

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// SNPReportSize is the size of an SEV-SNP ATTESTATION_REPORT.
const SNPReportSize = 0x4a0

// snpTCB is a TCB_VERSION as the sev crate serializes it: fmc is set on
// Turin, whose layout differs.
type snpTCB struct {
	FMC        *uint8 `json:"fmc"`
	Bootloader uint8  `json:"bootloader"`
	TEE        uint8  `json:"tee"`
	SNP        uint8  `json:"snp"`
	Microcode  uint8  `json:"microcode"`
}

func (t snpTCB) bytes() [8]byte {
	var b [8]byte
	if t.FMC != nil {
		// Turin: FMC, bootloader, TEE, SNP, reserved, microcode.
		b[0], b[1], b[2], b[3], b[7] = *t.FMC, t.Bootloader, t.TEE, t.SNP, t.Microcode
		return b
	}
	// Milan and Genoa: bootloader, TEE, reserved, SNP, microcode.
	b[0], b[1], b[6], b[7] = t.Bootloader, t.TEE, t.SNP, t.Microcode
	return b
}

type snpVersion struct {
	Major uint8 `json:"major"`
	Minor uint8 `json:"minor"`
	Build uint8 `json:"build"`
}

// snpReportJSON is the AttestationReport of the sev crate (version 6, as
// Trustee's verifier takes it), every member required.
type snpReportJSON struct {
	Version      *uint32     `json:"version"`
	GuestSVN     *uint32     `json:"guest_svn"`
	Policy       *uint64     `json:"policy"`
	VMPL         *uint32     `json:"vmpl"`
	SigAlgo      *uint32     `json:"sig_algo"`
	CurrentTCB   *snpTCB     `json:"current_tcb"`
	PlatInfo     *uint64     `json:"plat_info"`
	KeyInfo      *uint32     `json:"key_info"`
	ReportedTCB  *snpTCB     `json:"reported_tcb"`
	CPUIDFamID   *uint8      `json:"cpuid_fam_id"`
	CPUIDModID   *uint8      `json:"cpuid_mod_id"`
	CPUIDStep    *uint8      `json:"cpuid_step"`
	CommittedTCB *snpTCB     `json:"committed_tcb"`
	Current      *snpVersion `json:"current"`
	Committed    *snpVersion `json:"committed"`
	LaunchTCB    *snpTCB     `json:"launch_tcb"`
	Signature    *struct {
		R []int `json:"r"`
		S []int `json:"s"`
	} `json:"signature"`
}

// SNPReportFromTrustee is the raw ATTESTATION_REPORT (version 3 and up,
// the layout of AMD's SEV-SNP ABI) that Trustee's SNP evidence carries as
// the sev crate serializes it: each member at its offset, byte arrays of
// their exact lengths, the signature's r and s as the report holds them.
// A member missing or of the wrong length is an error.
func SNPReportFromTrustee(data []byte) ([]byte, error) {
	if len(data) > 64<<10 {
		return nil, fmt.Errorf("%w: an SNP report of %d bytes of JSON", ErrMessage, len(data))
	}
	var r snpReportJSON
	if err := decodeLoose(data, &r); err != nil {
		return nil, fmt.Errorf("%w: the SNP report: %v", ErrMessage, err)
	}
	var arrays map[string]json.RawMessage
	if err := json.Unmarshal(data, &arrays); err != nil {
		return nil, fmt.Errorf("%w: the SNP report: %v", ErrMessage, err)
	}
	if r.Version == nil || r.GuestSVN == nil || r.Policy == nil || r.VMPL == nil || r.SigAlgo == nil || r.CurrentTCB == nil || r.PlatInfo == nil ||
		r.KeyInfo == nil || r.ReportedTCB == nil || r.CPUIDFamID == nil || r.CPUIDModID == nil || r.CPUIDStep == nil || r.CommittedTCB == nil ||
		r.Current == nil || r.Committed == nil || r.LaunchTCB == nil || r.Signature == nil {
		return nil, fmt.Errorf("%w: the SNP report lacks a member", ErrMessage)
	}
	if *r.Version < 3 {
		return nil, fmt.Errorf("%w: an SNP report of version %d (3 and up)", ErrMessage, *r.Version)
	}
	out := make([]byte, SNPReportSize)
	le := binary.LittleEndian
	le.PutUint32(out[0x00:], *r.Version)
	le.PutUint32(out[0x04:], *r.GuestSVN)
	le.PutUint64(out[0x08:], *r.Policy)
	le.PutUint32(out[0x30:], *r.VMPL)
	le.PutUint32(out[0x34:], *r.SigAlgo)
	for _, t := range []struct {
		off int
		tcb *snpTCB
	}{{0x38, r.CurrentTCB}, {0x180, r.ReportedTCB}, {0x1e0, r.CommittedTCB}, {0x1f0, r.LaunchTCB}} {
		b := t.tcb.bytes()
		copy(out[t.off:], b[:])
	}
	le.PutUint64(out[0x40:], *r.PlatInfo)
	le.PutUint32(out[0x48:], *r.KeyInfo)
	out[0x188], out[0x189], out[0x18a] = *r.CPUIDFamID, *r.CPUIDModID, *r.CPUIDStep
	out[0x1e8], out[0x1e9], out[0x1ea] = r.Current.Build, r.Current.Minor, r.Current.Major
	out[0x1ec], out[0x1ed], out[0x1ee] = r.Committed.Build, r.Committed.Minor, r.Committed.Major
	for _, f := range []struct {
		name string
		off  int
		size int
	}{{"family_id", 0x10, 16}, {"image_id", 0x20, 16}, {"report_data", 0x50, 64}, {"measurement", 0x90, 48}, {"host_data", 0xc0, 32},
		{"id_key_digest", 0xe0, 48}, {"author_key_digest", 0x110, 48}, {"report_id", 0x140, 32}, {"report_id_ma", 0x160, 32}, {"chip_id", 0x1a0, 64}} {
		var b []int
		if err := json.Unmarshal(arrays[f.name], &b); err != nil || len(b) != f.size {
			return nil, fmt.Errorf("%w: the SNP report's %s is not %d bytes", ErrMessage, f.name, f.size)
		}
		if err := putBytes(out[f.off:f.off+f.size], b); err != nil {
			return nil, fmt.Errorf("%w: the SNP report's %s: %v", ErrMessage, f.name, err)
		}
	}
	if len(r.Signature.R) != 72 || len(r.Signature.S) != 72 {
		return nil, fmt.Errorf("%w: the SNP report's signature is not r and s of 72 bytes", ErrMessage)
	}
	if err := putBytes(out[0x2a0:0x2a0+72], r.Signature.R); err != nil {
		return nil, fmt.Errorf("%w: the signature: %v", ErrMessage, err)
	}
	if err := putBytes(out[0x2a0+72:0x2a0+144], r.Signature.S); err != nil {
		return nil, fmt.Errorf("%w: the signature: %v", ErrMessage, err)
	}
	return out, nil
}

func putBytes(dst []byte, src []int) error {
	for i, v := range src {
		if v < 0 || v > 255 {
			return fmt.Errorf("%d is not a byte", v)
		}
		dst[i] = byte(v)
	}
	return nil
}

// CertDER is the entry's DER, its bytes each 0 to 255.
func (c *CertEntry) CertDER() ([]byte, error) {
	out := make([]byte, len(c.Data))
	if err := putBytes(out, c.Data); err != nil {
		return nil, fmt.Errorf("%w: the certificate: %v", ErrMessage, err)
	}
	return out, nil
}
