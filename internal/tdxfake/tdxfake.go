// Package tdxfake makes TDX quotes for tests: the fields of the real quote
// go-tdx-guest ships, with the report data asked for, signed by a test-only
// attestation key whose QE report is signed by a test-only PCK chain shaped
// like Intel's (same names, same SGX extensions). Such quotes verify only
// against the chain's own root, never against Intel's.
package tdxfake

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/rtmr"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/testing/testdata"
	"google.golang.org/protobuf/proto"
)

// sgxExtensions is Intel's SGX extensions OID, which a PCK certificate
// carries (FMSPC, TCB, PCE id) and go-tdx-guest parses.
var sgxExtensions = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}

// Provider signs quotes; it is a go-tdx-guest client.QuoteProvider.
type Provider struct {
	template *pb.QuoteV4
	attest   *ecdsa.PrivateKey
	pck      *ecdsa.PrivateKey
	chain    []byte
	roots    *x509.CertPool
	// Body, if set, edits each quote's body before it is signed (TD
	// attributes, TEE TCB SVN, RTMRs, MRCONFIGID).
	Body func(*pb.TDQuoteBody)
	// QE, if set, edits the QE report before the PCK key signs it.
	QE func(*pb.EnclaveReport)
	// Registers, if set, is where the quotes' RTMR2 and RTMR3 are read
	// (go-configfs-tsm's fakertmr, which a backend extends).
	Registers configfsi.Client
	// Version 5 makes TDX 1.5 quotes (header version 5, a body descriptor);
	// with TD15 their body is a TD 1.5 report, TEE_TCB_SVN2 and
	// MRSERVICETD after the TD 1.0 fields.
	Version int
	TD15    bool
	// Calls counts the quotes made.
	Calls int
}

// TD15Extra is what a TD 1.5 body adds: TEE_TCB_SVN2 (16) and MRSERVICETD
// (48), the values the fake puts there.
var TD15Extra = append(append(make([]byte, 0, 64), "TEE_TCB_SVN2 v15"...), bytes.Repeat([]byte{0x5e}, 48)...)

// New makes a provider with fresh test-only keys.
func New(t testing.TB) *Provider {
	t.Helper()
	q, err := abi.QuoteToProto(testdata.RawQuote)
	if err != nil {
		t.Fatal(err)
	}
	real := q.(*pb.QuoteV4)
	var realCerts []*x509.Certificate
	for rest := real.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain(); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		realCerts = append(realCerts, c)
	}
	if len(realCerts) != 3 {
		t.Fatalf("the real quote's chain has %d certificates", len(realCerts))
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, interKey, pckKey := key(), key(), key()
	notBefore, notAfter := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC)
	issue := func(serial int64, like *x509.Certificate, ca bool, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
		point, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		ski := sha256.Sum256(point)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: like.Subject, NotBefore: notBefore, NotAfter: notAfter,
			SubjectKeyId: ski[:20], CRLDistributionPoints: like.CRLDistributionPoints,
			SignatureAlgorithm: x509.ECDSAWithSHA256, BasicConstraintsValid: true, IsCA: ca,
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
		if !ca {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
			for _, e := range like.Extensions {
				if e.Id.Equal(sgxExtensions) {
					tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, e)
				}
			}
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	root := issue(1, realCerts[2], true, nil, &rootKey.PublicKey, rootKey)
	inter := issue(2, realCerts[1], true, root, &interKey.PublicKey, rootKey)
	leaf := issue(3, realCerts[0], false, inter, &pckKey.PublicKey, interKey)
	var chain []byte
	for _, c := range []*x509.Certificate{leaf, inter, root} {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	return &Provider{template: real, attest: key(), pck: pckKey, chain: chain, roots: roots}
}

// Roots is the test-only root the quotes chain to.
func (p *Provider) Roots() *x509.CertPool { return p.roots }

// IsSupported implements client.QuoteProvider.
func (p *Provider) IsSupported() error { return nil }

// GetRawQuote implements client.QuoteProvider: a v4 quote carrying
// reportData.
func (p *Provider) GetRawQuote(reportData [64]byte) ([]uint8, error) {
	p.Calls++
	q := proto.Clone(p.template).(*pb.QuoteV4)
	body := q.GetTdQuoteBody()
	body.ReportData = append([]byte(nil), reportData[:]...)
	if p.Registers != nil {
		for _, i := range []int{2, 3} {
			r, err := rtmr.GetDigest(p.Registers, i)
			if err != nil {
				return nil, err
			}
			body.Rtmrs[i] = r.Digest
		}
	}
	if p.Body != nil {
		p.Body(body)
	}
	signed := q.GetSignedData()
	// The attestation key is the point's X ‖ Y, without SEC 1's 0x04.
	point, err := p.attest.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	ak := point[1:]
	signed.EcdsaAttestationKey = ak
	cert := signed.GetCertificationData()
	qe := cert.GetQeReportCertificationData()
	// The QE report vouches for the attestation key: its report data is
	// SHA-256(attestation key ‖ QE auth data), then zeros.
	h := sha256.Sum256(append(append([]byte(nil), ak...), qe.GetQeAuthData().GetData()...))
	qe.QeReport.ReportData = append(h[:], make([]byte, 32)...)
	if p.QE != nil {
		p.QE(qe.QeReport)
	}
	rawReport, err := abi.EnclaveReportToAbiBytes(qe.GetQeReport())
	if err != nil {
		return nil, err
	}
	if qe.QeReportSignature, err = sign(p.pck, rawReport); err != nil {
		return nil, err
	}
	qe.PckCertificateChainData.PckCertChain = p.chain
	qe.PckCertificateChainData.Size = uint32(len(p.chain))
	// Sizes: QE report (384), its signature (64), auth data (2 + n), the
	// chain's type and size (6) and the chain; then the signed data's
	// signature (64), key (64), certification type and size (6).
	cert.Size = uint32(384 + 64 + 2 + len(qe.GetQeAuthData().GetData()) + 6 + len(p.chain))
	q.SignedDataSize = 64 + 64 + 6 + cert.Size
	header, err := abi.HeaderToAbiBytes(q.GetHeader())
	if err != nil {
		return nil, err
	}
	rawBody, err := abi.TdQuoteBodyToAbiBytes(body)
	if err != nil {
		return nil, err
	}
	if signed.Signature, err = sign(p.attest, append(header, rawBody...)); err != nil {
		return nil, err
	}
	q.ExtraBytes = nil
	raw, err := abi.QuoteToAbiBytes(q)
	if err != nil || p.Version != 5 {
		return raw, err
	}
	return p.frameV5(raw)
}

// frameV5 turns a version 4 quote into version 5: header version 5, a body
// descriptor, the body (with the TD 1.5 fields if asked), the same
// signature data, and the attestation key's signature over header,
// descriptor and body.
func (p *Provider) frameV5(v4 []byte) ([]byte, error) {
	const header, body10 = 48, 584
	signed := append([]byte(nil), v4[:header]...)
	binary.LittleEndian.PutUint16(signed, 5)
	bodyType, body := uint16(2), append([]byte(nil), v4[header:header+body10]...)
	if p.TD15 {
		bodyType, body = 3, append(body, TD15Extra...)
	}
	signed = binary.LittleEndian.AppendUint16(signed, bodyType)
	signed = binary.LittleEndian.AppendUint32(signed, uint32(len(body)))
	signed = append(signed, body...)
	sigData := append([]byte(nil), v4[header+body10:]...)
	sig, err := sign(p.attest, signed)
	if err != nil {
		return nil, err
	}
	copy(sigData[4:4+64], sig)
	return append(signed, sigData...), nil
}

// sign is ECDSA-P256-SHA256 as a quote holds it: r ‖ s, 32 bytes each.
func sign(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		return nil, err
	}
	if r.BitLen() > 256 || s.BitLen() > 256 {
		return nil, errors.New("signature out of range")
	}
	return append(pad32(r), pad32(s)...), nil
}

func pad32(n *big.Int) []byte {
	out := make([]byte, 32)
	return n.FillBytes(out)
}
