package tdx

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
)

// Quote version 5 (TDX 1.5; Intel's TDX DCAP Quoting Library API, A.4):
//
//	header (48, version 5) ‖ body type (2) ‖ body size (4) ‖ body
//	‖ signature data size (4) ‖ signature data (as in version 4)
//
// Body type 2 is a TD 1.0 report body (584 bytes, version 4's), type 3 a
// TD 1.5 one (648: TEE_TCB_SVN2 and MRSERVICETD follow). The attestation
// key signs everything before the signature data size. go-tdx-guest
// v0.3.1 reads only version 4, so version 5 is read here, and the
// signature data (identical in both) through go-tdx-guest, by framing it as
// a version 4 quote.
const (
	headerSize     = 48
	body10Size     = 584
	body15Size     = 648
	bodyType10     = 2
	bodyType15     = 3
	descriptorSize = 6
	teeTypeTDX     = 0x81
	attKeyECDSA256 = 2
)

// quoteV5 is a parsed version 5 quote.
type quoteV5 struct {
	signed   []byte      // header ‖ descriptor ‖ body: what the attestation key signs
	body     []byte      // the whole body, 584 or 648 bytes
	auth     *pb.QuoteV4 // the body's first 584 bytes and the signature data, as version 4
	bodyType uint16
}

// parseV5 reads a version 5 quote's layout; nothing is verified yet.
func parseV5(raw []byte) (*quoteV5, error) {
	if len(raw) < headerSize+descriptorSize {
		return nil, fmt.Errorf("%w: a version 5 quote of %d bytes is shorter than its header", ErrQuote, len(raw))
	}
	h := raw[:headerSize]
	switch {
	case binary.LittleEndian.Uint16(h[0:2]) != 5:
		return nil, fmt.Errorf("%w: not a version 5 quote", ErrQuote)
	case binary.LittleEndian.Uint16(h[2:4]) != attKeyECDSA256:
		return nil, fmt.Errorf("%w: attestation key type %d is not ECDSA-256", ErrQuote, binary.LittleEndian.Uint16(h[2:4]))
	case binary.LittleEndian.Uint32(h[4:8]) != teeTypeTDX:
		return nil, fmt.Errorf("%w: TEE type %#x is not TDX", ErrQuote, binary.LittleEndian.Uint32(h[4:8]))
	}
	bodyType := binary.LittleEndian.Uint16(raw[headerSize:])
	size := binary.LittleEndian.Uint32(raw[headerSize+2:])
	switch {
	case bodyType == bodyType10 && size == body10Size, bodyType == bodyType15 && size == body15Size:
	default:
		return nil, fmt.Errorf("%w: body type %d of %d bytes is not a TD 1.0 (2, 584) or TD 1.5 (3, 648) report", ErrQuote, bodyType, size)
	}
	end := headerSize + descriptorSize + int(size)
	if len(raw) < end+4 {
		return nil, fmt.Errorf("%w: the quote ends inside its body", ErrQuote)
	}
	sigLen := binary.LittleEndian.Uint32(raw[end:])
	if uint64(sigLen) > uint64(len(raw)-end-4) {
		return nil, fmt.Errorf("%w: the signature data says %d bytes, %d are left", ErrQuote, sigLen, len(raw)-end-4)
	}
	// The same signature data, after a version 4 header and the TD 1.0
	// part of the body, is a version 4 quote go-tdx-guest can read.
	body := raw[headerSize+descriptorSize : end]
	framed := make([]byte, 0, headerSize+body10Size+4+int(sigLen))
	framed = append(framed, h...)
	binary.LittleEndian.PutUint16(framed[0:2], 4)
	framed = append(framed, body[:body10Size]...)
	framed = append(framed, raw[end:end+4+int(sigLen)]...)
	v4, err := parseV4(framed)
	if err != nil {
		return nil, err
	}
	return &quoteV5{signed: raw[:end], body: body, auth: v4, bodyType: bodyType}, nil
}

// verifyV5 checks a version 5 quote as go-tdx-guest checks version 4
// offline: the PCK chain to the roots, the QE report's signature by the
// PCK key, that the QE report vouches for the attestation key, and the
// attestation key's signature over header, descriptor and body.
func verifyV5(q *quoteV5, roots *x509.CertPool, now time.Time) error {
	signed := q.auth.GetSignedData()
	qe := signed.GetCertificationData().GetQeReportCertificationData()
	var certs []*x509.Certificate
	for rest := qe.GetPckCertificateChainData().GetPckCertChain(); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("the PCK chain: %v", err)
		}
		certs = append(certs, c)
	}
	if len(certs) != 3 {
		return fmt.Errorf("the PCK chain has %d certificates, not 3", len(certs))
	}
	leaf, inter := certs[0], certs[1]
	switch {
	case leaf.Subject.CommonName != "Intel SGX PCK Certificate":
		return fmt.Errorf("the PCK certificate is %q", leaf.Subject.CommonName)
	case inter.Subject.CommonName != "Intel SGX PCK Platform CA" && inter.Subject.CommonName != "Intel SGX PCK Processor CA":
		return fmt.Errorf("the PCK issuer is %q", inter.Subject.CommonName)
	}
	pool := x509.NewCertPool()
	pool.AddCert(inter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the PCK chain: %v", err)
	}
	if err := checkQE(qe.GetQeReport()); err != nil {
		return err
	}
	report, err := abi.EnclaveReportToAbiBytes(qe.GetQeReport())
	if err != nil {
		return err
	}
	sig, err := abi.SignatureToDER(qe.GetQeReportSignature())
	if err != nil {
		return err
	}
	if err := leaf.CheckSignature(x509.ECDSAWithSHA256, report, sig); err != nil {
		return fmt.Errorf("the QE report's signature: %v", err)
	}
	key := signed.GetEcdsaAttestationKey()
	want := sha256.Sum256(append(append([]byte(nil), key...), qe.GetQeAuthData().GetData()...))
	rd := qe.GetQeReport().GetReportData()
	if !bytes.Equal(rd[:32], want[:]) || !bytes.Equal(rd[32:], make([]byte, 32)) {
		return fmt.Errorf("the QE report does not vouch for the attestation key")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, key...))
	if err != nil {
		return fmt.Errorf("the attestation key: %v", err)
	}
	sig, err = abi.SignatureToDER(signed.GetSignature())
	if err != nil {
		return err
	}
	h := sha256.Sum256(q.signed)
	if !ecdsa.VerifyASN1(pub, h[:], sig) {
		return fmt.Errorf("the attestation key's signature over the quote does not verify")
	}
	return nil
}
