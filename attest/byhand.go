package attest

import (
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// Hex is bytes shown as lower-case hex, in JSON and in text alike.
type Hex []byte

// String is h in hex.
func (h Hex) String() string { return hex.EncodeToString(h) }

// MarshalText is h in hex, for JSON.
func (h Hex) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// maxEvidenceFile is the most a report or a certificate checked by hand
// may hold, maxQuoteFile a TDX quote with its PCK chain: none is ever
// larger.
const (
	maxEvidenceFile = 16 << 10
	maxQuoteFile    = 1 << 20
)

// SNPFiles are the files of an SEV-SNP report checked by hand, as
// operators do with snpguest: the raw report, the certificate that signed
// it (the chip's VCEK or, on a cloud provider's machines, the VLEK: one of
// the two) and, if given, the product's chain as AMD's KDS publishes it.
type SNPFiles struct{ Report, VCEK, VLEK, Chain string }

// SNPCheck is what a by-hand check of an SEV-SNP report found: how its
// signature chains to AMD's root, then the report's claims. It exists only
// for a report whose chain holds; its JSON and its text are one value.
type SNPCheck struct {
	SignatureChain string    `json:"signature_chain"`
	Signer         string    `json:"signer"`
	Chain          string    `json:"chain"`
	ChainFile      string    `json:"chain_file,omitempty"`
	Product        string    `json:"product"`
	At             time.Time `json:"at"`
	Measurement    Hex       `json:"measurement"`
	ReportData     Hex       `json:"report_data"`
	HostData       Hex       `json:"host_data"`
	Policy         string    `json:"policy"`
	DebugAllowed   bool      `json:"debug_allowed"`
	VMPL           uint32    `json:"vmpl"`
	ReportedTCB    string    `json:"reported_tcb"`
	TCB            snp.TCB   `json:"tcb"`
	CurrentTCB     string    `json:"current_tcb"`
	Version        uint32    `json:"version"`
	ChipID         Hex       `json:"chip_id"`
}

// VerifySNPFiles checks an SEV-SNP report by hand, offline: the signature
// by the certificate files name, that certificate's chain (the one in
// files.Chain, whose ARK must be AMD's own, or the one built in) to AMD's
// root for opts.Product, at opts.Now. A usage mistake (both or neither of
// VCEK and VLEK, a VCEK given as the VLEK) is E1001, an unreadable,
// oversized or empty file E1022 evidence-malformed, and a report, a
// certificate or a chain that does not verify E3008 evidence-refused.
func VerifySNPFiles(files SNPFiles, opts snp.Options) (*SNPCheck, error) {
	certFile, isVLEK := files.VCEK, false
	switch {
	case files.VCEK != "" && files.VLEK != "":
		return nil, errcode.Errorf(errcode.Usage, "--vcek and --vlek name the same certificate: pass one").WithHint("a report is signed by its chip's VCEK or by its cloud provider's VLEK")
	case files.VLEK != "":
		certFile, isVLEK = files.VLEK, true
	case files.VCEK == "":
		return nil, errcode.Errorf(errcode.Usage, "--snp-report needs --vcek FILE or --vlek FILE").WithHint("fetch the VCEK from AMD's KDS, or take the VCEK or VLEK from the extended report's certificate table")
	}
	raw, err := readSmall(files.Report, maxEvidenceFile)
	if err != nil {
		return nil, Flagged("--snp-report", err)
	}
	certFlag := "--vcek"
	if isVLEK {
		certFlag = "--vlek"
	}
	certData, err := readSmall(certFile, maxEvidenceFile)
	if err != nil {
		return nil, Flagged(certFlag, err)
	}
	cert := derOf(certData)
	signer, err := snp.CertificateSigner(cert)
	if err != nil {
		return nil, errcode.Errorf(errcode.EvidenceRefused, "%s %s: %w", certFlag, certFile, err)
	}
	if isVLEK && signer != snp.SignerVLEK {
		return nil, errcode.Errorf(errcode.EvidenceRefused, "--vlek %s is a %s certificate, not a VLEK", certFile, signer).WithHint("pass a VCEK as --vcek")
	}
	chain := "built in"
	if files.Chain != "" {
		if opts.Chain, err = readSmall(files.Chain, snp.MaxChain); err != nil {
			return nil, Flagged("--chain", err)
		}
		if len(opts.Chain) == 0 {
			return nil, errcode.Errorf(errcode.EvidenceMalformed, "--chain %s is empty", files.Chain).WithHint("pass the ASK (or ASVK) and ARK in PEM, as AMD's KDS serves them at /vcek/v1/PRODUCT/cert_chain")
		}
		chain = "file"
	}
	c, err := snp.Verify(raw, cert, opts)
	if err != nil {
		return nil, Flagged("--snp-report", errcode.Errorf(errcode.EvidenceRefused, "%w", err))
	}
	return &SNPCheck{SignatureChain: "valid", Signer: c.Signer, Chain: chain, ChainFile: files.Chain, Product: opts.Product, At: opts.Now.UTC(),
		Measurement: c.Measurement[:], ReportData: c.ReportData[:], HostData: c.HostData[:],
		Policy: fmt.Sprintf("%#x", c.Policy), DebugAllowed: c.Debug, VMPL: c.VMPL, ReportedTCB: fmt.Sprintf("%#016x", c.ReportedTCB), TCB: c.TCB,
		CurrentTCB: fmt.Sprintf("%#016x", c.CurrentTCB), Version: c.Version, ChipID: c.ChipID}, nil
}

// TDXCheck is what a by-hand check of a TDX quote found: that its
// signature and PCK chain hold to Intel's root, whether its TCB was judged
// up to date by Intel's collateral ("UpToDate", or "not judged" without
// collateral), then the quote's claims; its JSON and its text are one
// value.
type TDXCheck struct {
	SignatureChain string    `json:"signature_chain"`
	TCBStatus      string    `json:"tcb_status"`
	At             time.Time `json:"at"`
	Version        uint32    `json:"version"`
	MRTD           Hex       `json:"mrtd"`
	RTMRs          []Hex     `json:"rtmrs"`
	ReportData     Hex       `json:"report_data"`
	MRConfigID     Hex       `json:"mrconfigid"`
	TDAttributes   Hex       `json:"td_attributes"`
	Debug          bool      `json:"debug"`
	TeeTcbSvn      Hex       `json:"tee_tcb_svn"`
	TeeTcbSvn2     Hex       `json:"tee_tcb_svn2,omitempty"`
	MRServiceTD    Hex       `json:"mrservicetd,omitempty"`
}

// VerifyTDXFile checks the TDX quote in file by hand, offline: its
// signature and the PCK chain it carries to Intel's root at opts.Now, and
// with opts.Collateral its TCB status, which must then be up to date. An
// unreadable file is E1022 evidence-malformed, a quote that does not
// verify E3008 evidence-refused.
func VerifyTDXFile(file string, opts tdx.Options) (*TDXCheck, error) {
	raw, err := readSmall(file, maxQuoteFile)
	if err != nil {
		return nil, Flagged("--tdx-quote", err)
	}
	c, err := tdx.VerifyWith(raw, opts)
	if err != nil {
		return nil, Flagged("--tdx-quote", errcode.Errorf(errcode.EvidenceRefused, "%w", err))
	}
	out := &TDXCheck{SignatureChain: "valid", TCBStatus: "not judged", At: opts.Now.UTC(), Version: c.Version, MRTD: c.MRTD[:],
		ReportData: c.ReportData[:], MRConfigID: c.MRConfigID[:], TDAttributes: c.TDAttributes, Debug: c.Debug, TeeTcbSvn: c.TeeTcbSvn}
	if c.TCBUpToDate {
		out.TCBStatus = "UpToDate"
	}
	for _, r := range c.RTMRs {
		out.RTMRs = append(out.RTMRs, Hex(bytes.Clone(r[:])))
	}
	if c.TeeTcbSvn2 != nil {
		out.TeeTcbSvn2, out.MRServiceTD = c.TeeTcbSvn2, c.MRServiceTD[:]
	}
	return out, nil
}

// Flagged is err, about the input of the command-line flag flag, with the
// flag named first in its message, its code and hint kept: a caller maps
// a refusal back to the input it is about (FlagOf).
func Flagged(flag string, err error) error {
	e := errcode.From(err)
	if strings.HasPrefix(e.Error(), flag+" ") || strings.HasPrefix(e.Error(), flag+":") {
		return err
	}
	return errcode.Errorf(e.Code, "%s: %w", flag, err).WithHint(e.Hint())
}

// FlagOf is the flag an error of the by-hand checks names first ("" if
// none): the input it is about.
func FlagOf(err error) string {
	if err == nil {
		return ""
	}
	msg := errcode.From(err).Error()
	if !strings.HasPrefix(msg, "--") {
		return ""
	}
	end := strings.IndexAny(msg, " :")
	if end < 0 {
		return msg
	}
	return msg[:end]
}

// readSmall reads a regular file of at most max bytes (a FIFO or a device
// would never end); anything else is E1022 evidence-malformed.
func readSmall(path string, max int64) ([]byte, error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%s is larger than %d bytes", path, max)
	}
	return data, nil
}

// derOf takes a certificate as AMD's KDS serves it (DER) or in PEM.
func derOf(data []byte) []byte {
	if b, rest := pem.Decode(data); b != nil && b.Type == "CERTIFICATE" && len(bytes.TrimSpace(rest)) == 0 {
		return b.Bytes
	}
	return data
}
