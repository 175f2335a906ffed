// Package tdx reads and verifies Intel TDX quotes with google/go-tdx-guest:
// the quote's ECDSA signature by the quoting enclave's attestation key, and
// the PCK certificate chain it carries to the Intel root the library
// embeds, offline and at a given time.
package tdx

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"
)

// Kind is TDX's evidence kind.
const Kind = "tdx"

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
}

// ErrQuote wraps every reason a quote does not verify.
var ErrQuote = errors.New("TDX quote does not verify")

// Verify checks a raw quote offline at now (collateral is not fetched, so
// TCB status is not judged here) and returns its claims. Quotes of version
// 4 are read; version 5 (TDX 1.5) is refused until go-tdx-guest reads it.
func Verify(raw []byte, now time.Time) (*Claims, error) {
	q, err := abi.QuoteToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQuote, err)
	}
	v4, ok := q.(*pb.QuoteV4)
	if !ok {
		return nil, fmt.Errorf("%w: quote format %T is not read yet", ErrQuote, q)
	}
	if now.IsZero() {
		now = time.Now()
	}
	if err := verify.TdxQuote(v4, &verify.Options{GetCollateral: false, CheckRevocations: false, Now: now}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrQuote, err)
	}
	body := v4.GetTdQuoteBody()
	c := &Claims{Version: v4.GetHeader().GetVersion(), TDAttributes: body.GetTdAttributes(), TeeTcbSvn: body.GetTeeTcbSvn()}
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
	return c, nil
}
