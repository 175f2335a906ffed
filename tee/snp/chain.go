package snp

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	"github.com/google/go-sev-guest/verify/trust"
)

// The signers of a report: the chip's own key (VCEK), or a key AMD issued
// to a cloud provider for its machines (VLEK, as AWS uses).
const (
	SignerVCEK = "VCEK"
	SignerVLEK = "VLEK"
)

// MaxChain bounds a chain file's size: two certificates in PEM are under
// 5 KiB; nothing larger is read.
const MaxChain = 64 << 10

// Chain is an AMD product certificate chain as the KDS serves it, at
// /vcek/v1/{product}/cert_chain (the ASK, then the ARK) or
// /vlek/v1/{product}/cert_chain (the ASVK, then the ARK), both PEM.
type Chain struct {
	// Intermediate is the ASK, or with VLEK set the ASVK.
	Intermediate *x509.Certificate
	// ARK is AMD's root key for the product line.
	ARK *x509.Certificate
	// VLEK: Intermediate is an ASVK, which certifies VLEKs only.
	VLEK bool
}

// ParseChain reads a chain as the KDS serves it: two PEM certificates, the
// ASK or ASVK and then the ARK, nothing after. It checks the form only:
// that the ARK is AMD's and certifies the intermediate is judged when a
// report is verified with it.
func ParseChain(data []byte) (*Chain, error) {
	if len(data) > MaxChain {
		return nil, fmt.Errorf("%w: the chain is %d bytes, more than %d", ErrReport, len(data), MaxChain)
	}
	ica, ark, err := kds.ParseProductCertChain(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("%w: the chain is not an ASK or ASVK and an ARK in PEM: %v", ErrReport, err)
	}
	c := &Chain{}
	if c.Intermediate, err = x509.ParseCertificate(ica); err != nil {
		return nil, fmt.Errorf("%w: the chain's ASK or ASVK: %v", ErrReport, err)
	}
	if c.ARK, err = x509.ParseCertificate(ark); err != nil {
		return nil, fmt.Errorf("%w: the chain's ARK: %v", ErrReport, err)
	}
	c.VLEK = strings.HasPrefix(c.Intermediate.Subject.CommonName, "SEV-VLEK-")
	return c, nil
}

// CertificateSigner says which kind of key a certificate (DER) is for:
// SignerVCEK or SignerVLEK, read from the certificate as Verify reads it.
// It verifies nothing.
func CertificateSigner(der []byte) (string, error) {
	_, kind, err := endorsement(der)
	if err != nil {
		return "", err
	}
	return kind.String(), nil
}

// endorsement reads the certificate of the key that signed a report and
// says which kind it is, by its subject (CN SEV-VCEK or SEV-VLEK) and the
// extension only that kind carries (a VCEK names its chip, HWID; a VLEK
// its cloud provider, CSP_ID). A certificate that is neither, or claims
// one kind and carries the other's extension, is refused.
func endorsement(der []byte) (*x509.Certificate, abi.ReportSigner, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: the VCEK or VLEK certificate: %v", ErrReport, err)
	}
	var hwid, cspid bool
	for _, e := range cert.Extensions {
		hwid = hwid || e.Id.Equal(kds.OidHwid)
		cspid = cspid || e.Id.Equal(kds.OidCspID)
	}
	switch cn := cert.Subject.CommonName; {
	case cn == "SEV-VCEK" && hwid && !cspid:
		return cert, abi.VcekReportSigner, nil
	case cn == "SEV-VLEK" && cspid && !hwid:
		return cert, abi.VlekReportSigner, nil
	default:
		return nil, 0, fmt.Errorf("%w: the certificate (CN %q) is neither a VCEK (CN SEV-VCEK, with a HWID) nor a VLEK (CN SEV-VLEK, with a CSP_ID)", ErrReport, cn)
	}
}

// embeddedASVK is the ASVK go-sev-guest embeds for each product line,
// checked once to be certified by the embedded ARK of the same line (its
// default roots carry no ASVK, so a VLEK could not be verified at all).
var embeddedASVK = sync.OnceValue(func() map[string]*x509.Certificate {
	out := map[string]*x509.Certificate{}
	for line, pem := range map[string][]byte{"Milan": trust.AskArkMilanVlekBytes, "Genoa": trust.AskArkGenoaVlekBytes, "Turin": trust.AskArkTurinVlekBytes} {
		c, err := ParseChain(pem)
		root := trust.DefaultRootCerts[line]
		if err != nil || !c.VLEK || root == nil || root.ProductCerts == nil || root.ProductCerts.Ark == nil ||
			!c.ARK.Equal(root.ProductCerts.Ark) || c.Intermediate.CheckSignatureFrom(root.ProductCerts.Ark) != nil {
			continue
		}
		out[line] = c.Intermediate
	}
	return out
})

// anchor is the ARK and intermediates a report of the product line is
// verified against: roots when set (tests), else AMD's that go-sev-guest
// embeds, with their ASVK.
func anchor(line string, roots *Roots) (*trust.ProductCerts, error) {
	if roots != nil {
		for _, r := range roots.m[line] {
			if r.ProductCerts != nil && r.ProductCerts.Ark != nil {
				pc := *r.ProductCerts
				return &pc, nil
			}
		}
		return nil, fmt.Errorf("%w: no trusted roots for %s", ErrReport, line)
	}
	root := trust.DefaultRootCerts[line]
	if root == nil || root.ProductCerts == nil || root.ProductCerts.Ark == nil {
		return nil, fmt.Errorf("%w: no AMD roots for %s", ErrReport, line)
	}
	return &trust.ProductCerts{Ark: root.ProductCerts.Ark, Ask: root.ProductCerts.Ask, Asvk: embeddedASVK()[line]}, nil
}

// withChain replaces the anchor's intermediate by the chain's, which must
// be of the signer's kind and certified, at now, by the anchor's ARK: the
// chain's own ARK must be that very certificate. A chain is a way to bring
// AMD's published intermediate, never another root.
func withChain(pc *trust.ProductCerts, c *Chain, line string, signer abi.ReportSigner, now time.Time) error {
	if !c.ARK.Equal(pc.Ark) {
		return fmt.Errorf("%w: the chain's ARK (CN %q) is not AMD's ARK for %s: a chain cannot bring its own root", ErrReport, c.ARK.Subject.CommonName, line)
	}
	switch {
	case c.VLEK && signer != abi.VlekReportSigner:
		return fmt.Errorf("%w: the chain is AMD's VLEK chain (ASVK), and the report is signed by a %v", ErrReport, signer)
	case !c.VLEK && signer == abi.VlekReportSigner:
		return fmt.Errorf("%w: the chain is AMD's VCEK chain (ASK), and the report is signed by a VLEK", ErrReport)
	}
	want := "SEV-" + line
	if c.VLEK {
		want = "SEV-VLEK-" + line
	}
	ica := c.Intermediate
	switch {
	case ica.Subject.CommonName != want:
		return fmt.Errorf("%w: the chain's intermediate is %q, not %s's %q", ErrReport, ica.Subject.CommonName, line, want)
	case !ica.IsCA || !ica.BasicConstraintsValid:
		return fmt.Errorf("%w: the chain's intermediate %q is not a CA certificate", ErrReport, ica.Subject.CommonName)
	case now.Before(ica.NotBefore) || now.After(ica.NotAfter):
		return fmt.Errorf("%w: the chain's intermediate %q is not valid at %s (%s to %s)", ErrReport, ica.Subject.CommonName, now.UTC().Format(time.RFC3339),
			ica.NotBefore.UTC().Format(time.RFC3339), ica.NotAfter.UTC().Format(time.RFC3339))
	}
	if err := ica.CheckSignatureFrom(pc.Ark); err != nil {
		return fmt.Errorf("%w: the chain's intermediate %q is not signed by AMD's ARK for %s: %v", ErrReport, ica.Subject.CommonName, line, err)
	}
	if c.VLEK {
		pc.Asvk = ica
	} else {
		pc.Ask = ica
	}
	return nil
}
