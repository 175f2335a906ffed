package tdx

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"
	"github.com/google/go-tdx-guest/verify/trust"

	"github.com/ampoule-run/ampoule/internal/strictjson"
)

// PCS is Intel's Provisioning Certification Service, where collateral
// comes from.
const PCS = "https://api.trustedservices.intel.com"

// CollateralVersion is the collateral format this package writes and reads.
const CollateralVersion = 1

// MaxCollateral bounds a collateral document's encoded size.
const MaxCollateral = 1 << 20

// Collateral is what Intel's PCS answered for a quote (TCB info, QE
// identity, the PCK CRL and the root CA CRL, each with the headers that
// carry its issuer chain), kept so that TCB status is judged offline, by a
// verifier with no network or at a pinned time. Every answer is signed by
// Intel: go-tdx-guest checks each signature and chain to Intel's root.
type Collateral struct {
	Version   int                 `json:"version"`
	Responses map[string]Response `json:"responses"`
}

// Response is one PCS answer.
type Response struct {
	Header map[string][]string `json:"header,omitempty"`
	Body   []byte              `json:"body"`
}

// ErrCollateral wraps every reason a collateral document cannot be read.
var ErrCollateral = errors.New("not a valid TDX collateral document")

// DecodeCollateral reads a collateral document strictly.
func DecodeCollateral(data []byte) (*Collateral, error) {
	if len(data) > MaxCollateral {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrCollateral, len(data), MaxCollateral)
	}
	var c Collateral
	if err := strictjson.Decode(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCollateral, err)
	}
	if c.Version != CollateralVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCollateral, c.Version, CollateralVersion)
	}
	if len(c.Responses) == 0 {
		return nil, fmt.Errorf("%w: no responses", ErrCollateral)
	}
	return &c, nil
}

// Get implements go-tdx-guest's trust.HTTPSGetter from the kept answers:
// a URL not kept is an error, never a network request.
func (c *Collateral) Get(url string) (map[string][]string, []byte, error) {
	r, ok := c.Responses[url]
	if !ok {
		return nil, nil, fmt.Errorf("the collateral has no answer for %s", url)
	}
	return r.Header, r.Body, nil
}

// recorder keeps every answer a getter gives.
type recorder struct {
	get trust.HTTPSGetter
	c   *Collateral
}

func (r *recorder) Get(url string) (map[string][]string, []byte, error) {
	h, b, err := r.get.Get(url)
	if err == nil {
		r.c.Responses[url] = Response{Header: h, Body: b}
	}
	return h, b, err
}

// pcsGetter asks Intel's PCS, or a mirror at base serving the same paths,
// for what go-tdx-guest would ask Intel's.
type pcsGetter struct {
	base   string
	client *http.Client
}

func (g *pcsGetter) Get(url string) (map[string][]string, []byte, error) {
	if g.base != "" {
		// Intel serves the root CA CRL from another host; a mirror serves
		// every path itself.
		if rest, ok := strings.CutPrefix(url, "https://"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				url = strings.TrimSuffix(g.base, "/") + rest[i:]
			}
		}
	}
	resp, err := g.client.Get(url)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxCollateral))
	if err != nil {
		return nil, nil, err
	}
	return resp.Header, body, nil
}

// FetchCollateral asks the PCS at base (PCS when empty) for the collateral
// of a v4 quote, through client. The answers are kept whether or not the
// quote's TCB is up to date: judging them is VerifyWith's job.
func FetchCollateral(raw []byte, base string, client *http.Client) (*Collateral, error) {
	if len(raw) >= 2 && binary.LittleEndian.Uint16(raw) == 5 {
		return nil, fmt.Errorf("%w: %w", ErrQuote, ErrQuoteV5Collateral)
	}
	v4, err := parseV4(raw)
	if err != nil {
		return nil, err
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return fetchWith(v4, &pcsGetter{base: base, client: client})
}

// fetchWith records what go-tdx-guest asks get for when it judges v4.
func fetchWith(v4 *pb.QuoteV4, get trust.HTTPSGetter) (*Collateral, error) {
	rec := &recorder{get: get, c: &Collateral{Version: CollateralVersion, Responses: map[string]Response{}}}
	// A verification with collateral makes go-tdx-guest ask for each
	// answer it needs, in its own way; its verdict is not wanted here.
	verr := verify.TdxQuote(v4, &verify.Options{GetCollateral: true, CheckRevocations: true, Getter: rec, Now: time.Now()})
	if len(rec.c.Responses) < 4 {
		return nil, fmt.Errorf("fetching collateral got %d of 4 answers: %v", len(rec.c.Responses), verr)
	}
	return rec.c, nil
}

// CollateralSource fetches the collateral of quotes from a PCS (or a
// mirror, Base) for a relying party that judges many runs of few
// platforms: each answer is kept for TTL (an hour when zero), so that the
// PCS is asked again only when its answers may have changed.
type CollateralSource struct {
	Base   string
	Client *http.Client
	TTL    time.Duration

	mu    sync.Mutex
	cache map[string]cachedResponse
}

type cachedResponse struct {
	Response
	fetched time.Time
}

// Fetch returns the collateral of a version 4 quote.
func (s *CollateralSource) Fetch(raw []byte) (*Collateral, error) {
	if len(raw) >= 2 && binary.LittleEndian.Uint16(raw) == 5 {
		return nil, fmt.Errorf("%w: %w", ErrQuote, ErrQuoteV5Collateral)
	}
	v4, err := parseV4(raw)
	if err != nil {
		return nil, err
	}
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	return fetchWith(v4, &cachingGetter{s: s, inner: &pcsGetter{base: s.Base, client: client}})
}

type cachingGetter struct {
	s     *CollateralSource
	inner trust.HTTPSGetter
}

func (g *cachingGetter) Get(url string) (map[string][]string, []byte, error) {
	ttl := g.s.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	g.s.mu.Lock()
	c, ok := g.s.cache[url]
	g.s.mu.Unlock()
	if ok && time.Since(c.fetched) < ttl {
		return c.Header, c.Body, nil
	}
	h, b, err := g.inner.Get(url)
	if err != nil {
		return nil, nil, err
	}
	g.s.mu.Lock()
	if g.s.cache == nil {
		g.s.cache = map[string]cachedResponse{}
	}
	g.s.cache[url] = cachedResponse{Response: Response{Header: h, Body: b}, fetched: time.Now()}
	g.s.mu.Unlock()
	return h, b, nil
}

// Encode returns the document as indented JSON.
func (c *Collateral) Encode() ([]byte, error) { return json.MarshalIndent(c, "", "  ") }
