// Package tdx reads and verifies Intel TDX quotes with google/go-tdx-guest:
// the quote's ECDSA signature by the quoting enclave's attestation key, and
// the PCK certificate chain it carries to the Intel root the library
// embeds, offline and at a given time.
package tdx

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"

	"github.com/ampoule-run/ampoule/tee"
)

// Kind is TDX's evidence kind.
const Kind = tee.KindTDX

// tdAttributesDebug is the TUD.DEBUG bit of TDATTRIBUTES (bit 0).
const tdAttributesDebug = 1

// Claims are what a verified quote says.
type Claims struct {
	Version      uint32
	MRTD         [48]byte
	RTMRs        [4][48]byte
	ReportData   [64]byte
	MRConfigID   [48]byte
	TDAttributes []byte
	Debug        bool
	TeeTcbSvn    []byte
	// TCBUpToDate: the quote was judged with Intel's collateral, which
	// go-tdx-guest accepts only when the TCB is up to date.
	TCBUpToDate bool
	// TeeTcbSvn2 and MRServiceTD are in TD 1.5 report bodies only.
	TeeTcbSvn2  []byte
	MRServiceTD [48]byte
}

// IntelRootSHA256 pins the Intel SGX Root CA (CN=Intel SGX Root CA,
// O=Intel Corporation) by the SHA-256 of its DER encoding: the trust anchor
// of every TDX quote.
const IntelRootSHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

// intelRoot takes the root certificate from the quote's own PCK chain and
// trusts it only if it is Intel's, by fingerprint. (go-tdx-guest would fall
// back on its embedded copy of the same root, but says so on stderr on every
// call.)
func intelRoot(q *pb.QuoteV4) (*x509.CertPool, error) {
	chain := q.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetPckCertificateChainData().GetPckCertChain()
	var last *x509.Certificate
	for rest := chain; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: the PCK chain: %v", ErrQuote, err)
		}
		last = c
	}
	if last == nil {
		return nil, fmt.Errorf("%w: the quote carries no PCK certificate chain", ErrQuote)
	}
	sum := sha256.Sum256(last.Raw)
	if hex.EncodeToString(sum[:]) != IntelRootSHA256 {
		return nil, fmt.Errorf("%w: the chain's root is not Intel's SGX Root CA", ErrQuote)
	}
	pool := x509.NewCertPool()
	pool.AddCert(last)
	return pool, nil
}

// ErrQuoteV5Collateral: TCB status needs go-tdx-guest, which reads only
// version 4 quotes.
var ErrQuoteV5Collateral = errors.New("the TCB status of a version 5 quote is not judged yet: go-tdx-guest v0.3.1 reads version 4 only")

// parseV4 reads a version 4 quote.
func parseV4(raw []byte) (v4 *pb.QuoteV4, err error) {
	defer func() {
		if r := recover(); r != nil {
			v4, err = nil, fmt.Errorf("%w: malformed quote (the parser failed: %v)", ErrQuote, r)
		}
	}()
	q, err := abi.QuoteToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQuote, err)
	}
	v4, ok := q.(*pb.QuoteV4)
	if !ok {
		return nil, fmt.Errorf("%w: quote format %T is not read yet", ErrQuote, q)
	}
	if err := abi.CheckQuoteV4(v4); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQuote, err)
	}
	return v4, nil
}

// The quoting enclave that may vouch for a TD's attestation key: Intel's
// TD quoting enclave, as Intel's QE identity for TDX describes it (MRSIGNER,
// ISVPRODID 2, attributes under the mask, which keeps DEBUG clear).
// Without this check any enclave the platform's PCK certifies (one the host
// writes, say) could sign TD reports of its choosing.
var (
	intelTDQEMRSigner     = mustHex("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5")
	intelTDQEAttributes   = mustHex("11000000000000000000000000000000")
	intelTDQEAttrMask     = mustHex("fbffffffffffffff0000000000000000")
	intelTDQEProductID    = uint32(2)
	sgxAttributesDebugBit = byte(0x02)
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// checkQE refuses a QE report that is not Intel's TD quoting enclave.
func checkQE(r *pb.EnclaveReport) error {
	attrs := r.GetAttributes()
	if len(attrs) != len(intelTDQEAttrMask) {
		return fmt.Errorf("the QE report's attributes are %d bytes", len(attrs))
	}
	switch {
	case !bytes.Equal(r.GetMrSigner(), intelTDQEMRSigner):
		return fmt.Errorf("the quoting enclave is not Intel's (MRSIGNER %x)", r.GetMrSigner())
	case r.GetIsvProdId() != intelTDQEProductID:
		return fmt.Errorf("the quoting enclave's product id is %d, not Intel's TD QE (%d)", r.GetIsvProdId(), intelTDQEProductID)
	case attrs[0]&sgxAttributesDebugBit != 0:
		return fmt.Errorf("the quoting enclave runs in debug mode")
	}
	for i := range attrs {
		if attrs[i]&intelTDQEAttrMask[i] != intelTDQEAttributes[i] {
			return fmt.Errorf("the quoting enclave's attributes %x are not Intel's TD QE's", attrs)
		}
	}
	return nil
}

// ErrQuote wraps every reason a quote does not verify.
var ErrQuote = errors.New("TDX quote does not verify")

// Options tune VerifyWith.
type Options struct {
	// Now is the time certificates are judged at; zero means now.
	Now time.Time
	// Roots, if set, replace Intel's SGX root (tests with a test-only
	// chain); otherwise the quote's root must be Intel's, by fingerprint.
	Roots *x509.CertPool
	// Collateral, if set, is Intel's PCS answers for the quote: then the
	// TCB info, QE identity and CRLs are checked too (signatures, chains,
	// expiry, revocation) and the quote's TCB must be up to date.
	Collateral *Collateral
}

// Verify checks a raw quote offline at now against Intel's root; see
// VerifyWith.
func Verify(raw []byte, now time.Time) (*Claims, error) {
	return VerifyWith(raw, Options{Now: now})
}

// VerifyWith checks a raw quote offline and returns its claims: with
// opts.Collateral, Intel's answers are judged too and the TCB must be up to
// date; without, TCB status is not judged. Quotes of version 4 are read
// by go-tdx-guest; version 5 (TDX 1.5), which it cannot read, by parseV5,
// and judged without collateral only.
func VerifyWith(raw []byte, opts Options) (c *Claims, err error) {
	// go-tdx-guest's parser indexes past the end of some malformed quotes
	// (a hostile quote must never bring a verifier down).
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("%w: malformed quote (the parser failed: %v)", ErrQuote, r)
		}
	}()
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if len(raw) >= 2 && binary.LittleEndian.Uint16(raw) == 5 {
		return verifyWithV5(raw, opts, now)
	}
	v4, err := parseV4(raw)
	if err != nil {
		return nil, err
	}
	roots := opts.Roots
	if roots == nil {
		if roots, err = intelRoot(v4); err != nil {
			return nil, err
		}
	}
	vopts := &verify.Options{Now: now, TrustedRoots: roots}
	if opts.Collateral != nil {
		vopts.GetCollateral, vopts.CheckRevocations, vopts.Getter = true, true, opts.Collateral
	}
	if err := verify.TdxQuote(v4, vopts); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQuote, err)
	}
	if err := checkQE(v4.GetSignedData().GetCertificationData().GetQeReportCertificationData().GetQeReport()); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQuote, err)
	}
	c = claimsOf(v4.GetTdQuoteBody(), v4.GetHeader().GetVersion())
	c.TCBUpToDate = opts.Collateral != nil
	return c, nil
}

// verifyWithV5 is VerifyWith for a version 5 quote.
func verifyWithV5(raw []byte, opts Options, now time.Time) (*Claims, error) {
	if opts.Collateral != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuote, ErrQuoteV5Collateral)
	}
	q, err := parseV5(raw)
	if err != nil {
		return nil, err
	}
	roots := opts.Roots
	if roots == nil {
		if roots, err = intelRoot(q.auth); err != nil {
			return nil, err
		}
	}
	if err := verifyV5(q, roots, now); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQuote, err)
	}
	c := claimsOf(q.auth.GetTdQuoteBody(), 5)
	if q.bodyType == bodyType15 {
		c.TeeTcbSvn2 = append([]byte(nil), q.body[body10Size:body10Size+16]...)
		copy(c.MRServiceTD[:], q.body[body10Size+16:])
	}
	return c, nil
}

// claimsOf reads the claims of a TD report body.
func claimsOf(body *pb.TDQuoteBody, version uint32) *Claims {
	c := &Claims{Version: version, TDAttributes: body.GetTdAttributes(), TeeTcbSvn: body.GetTeeTcbSvn()}
	copy(c.MRTD[:], body.GetMrTd())
	copy(c.MRConfigID[:], body.GetMrConfigId())
	copy(c.ReportData[:], body.GetReportData())
	for i, r := range body.GetRtmrs() {
		if i < len(c.RTMRs) {
			copy(c.RTMRs[i][:], r)
		}
	}
	if len(c.TDAttributes) > 0 {
		c.Debug = c.TDAttributes[0]&tdAttributesDebug != 0
	}
	return c
}

// QuoteDebug reads whether a quote's TD attributes have TUD.DEBUG set (a
// host may then read the TD's memory), without verifying the quote: for a
// launcher judging the quote its own TD just made. A quote it cannot read
// is an error.
func QuoteDebug(raw []byte) (debug bool, err error) {
	body, err := unverifiedBody(raw)
	if err != nil {
		return false, err
	}
	attrs := body.GetTdAttributes()
	if len(attrs) == 0 {
		return false, fmt.Errorf("%w: the quote has no TD attributes", ErrQuote)
	}
	return attrs[0]&tdAttributesDebug != 0, nil
}

// unverifiedBody reads a v4 or v5 quote's TD report body without
// verifying the quote. A quote it cannot read is an error.
func unverifiedBody(raw []byte) (body *pb.TDQuoteBody, err error) {
	defer func() {
		if r := recover(); r != nil {
			body, err = nil, fmt.Errorf("%w: malformed quote (the parser failed: %v)", ErrQuote, r)
		}
	}()
	if len(raw) >= 2 && binary.LittleEndian.Uint16(raw) == 5 {
		q, err := parseV5(raw)
		if err != nil {
			return nil, err
		}
		return q.auth.GetTdQuoteBody(), nil
	}
	q, err := parseV4(raw)
	if err != nil {
		return nil, err
	}
	return q.GetTdQuoteBody(), nil
}

// QuoteMRConfigID reads a quote's MRCONFIGID (what the host set at the
// TD's launch), without verifying the quote: for a launcher judging the
// quote its own TD just made.
func QuoteMRConfigID(raw []byte) ([48]byte, error) {
	var out [48]byte
	body, err := unverifiedBody(raw)
	if err != nil {
		return out, err
	}
	if len(body.GetMrConfigId()) != 48 {
		return out, fmt.Errorf("%w: the quote's MRCONFIGID is not 48 bytes", ErrQuote)
	}
	copy(out[:], body.GetMrConfigId())
	return out, nil
}
