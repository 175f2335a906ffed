package kbs

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// ResourceSignatureHeader carries an Ampoule broker's Ed25519 signature
// over a resource answer (ResourceSigned), which Client checks against
// the key a manifest pins; Trustee's own clients ignore it.
const ResourceSignatureHeader = "Ampoule-Signature"

const resourceDomain = "ampoule/broker/kbs-resource/v1\x00"

// ResourceSigned is what an Ampoule broker signs of a resource answer:
// the domain, the challenge's nonce the token's evidence bound, the
// resource's path (each length-prefixed) and the answer's body.
func ResourceSigned(nonce, path string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(resourceDomain)
	for _, f := range []string{nonce, path} {
		fmt.Fprintf(&b, "%d:%s", len(f), f)
	}
	b.Write(body)
	return b.Bytes()
}

// Client runs the KBS protocol from inside the TEE: auth, attest, then
// resources, each resource a JWE to the session's key.
type Client struct {
	// URL is the broker's base URL.
	URL string
	// Key, if set, is the broker's Ed25519 key a manifest pins: every
	// resource answer must carry its signature over the session's nonce,
	// so a host in the middle cannot hand the run a resource of its own
	// (ECDH-ES authenticates no sender). Unset, the transport (TLS to a
	// stock Trustee) is trusted for that.
	Key ed25519.PublicKey
	// HTTP is the client to use; nil means one with a 30 s timeout.
	HTTP *http.Client
}

// Errors a client returns, each wrapped with detail.
var (
	// ErrUnavailable: the broker could not be reached, or failed.
	ErrUnavailable = errors.New("the KBS is unavailable")
	// ErrRefused: the broker answered a problem (errors.As finds it).
	ErrRefused = errors.New("the KBS refused")
)

// Session is one KBS session: the challenge, the cookie, the key its
// resources are encrypted to and, once attested, the token.
type Session struct {
	c         *Client
	cookie    *http.Cookie
	challenge string
	pub       JWK
	priv      *ecdh.PrivateKey
	token     string
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, prepare func(*http.Request)) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if prepare != nil {
		prepare(req)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		p, err := DecodeProblem(bytes.NewReader(data), resp.StatusCode)
		if err != nil || resp.StatusCode < 400 || resp.StatusCode >= 500 {
			return nil, nil, fmt.Errorf("%w: %s %s: %s", ErrUnavailable, method, path, resp.Status)
		}
		return nil, nil, fmt.Errorf("%w: %w", ErrRefused, p)
	}
	return resp, data, nil
}

// Auth opens a session for evidence of tee ("snp", "tdx",
// "ampoule-sim"), whose resources are to be encrypted to key's public
// key (P-256 or P-521).
func (c *Client) Auth(ctx context.Context, tee string, key *ecdh.PrivateKey) (*Session, error) {
	pub, err := JWKFromECDH(key.PublicKey())
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(Request{Version: ProtocolVersion, Tee: tee, ExtraParams: json.RawMessage(`""`)})
	resp, data, err := c.do(ctx, http.MethodPost, AuthPath, body, nil)
	if err != nil {
		return nil, err
	}
	ch, err := DecodeChallenge(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	s := &Session{c: c, challenge: ch.Nonce, pub: pub, priv: key}
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookie {
			s.cookie = ck
		}
	}
	if s.cookie == nil {
		return nil, fmt.Errorf("%w: the challenge set no %s cookie", ErrMessage, SessionCookie)
	}
	return s, nil
}

// ReportNonce is what the evidence must bind for this session: the
// runtime data's hash (RuntimeDataHash of the challenge's nonce and the
// session's key, with no additional evidence). An Ampoule run's envelope
// takes it as its nonce.
func (s *Session) ReportNonce() []byte {
	h := RuntimeDataHash(s.challenge, &s.pub, "")
	return h[:]
}

// AmpoulePrimary is the primary evidence of an Ampoule run: its envelope
// and, for the broker's audit trail, its bundle (nil for none).
func AmpoulePrimary(envelope, bundle any) (json.RawMessage, error) {
	env, err := json.Marshal(envelope)
	if err != nil {
		return nil, err
	}
	ev := AmpouleEvidence{Envelope: env}
	if bundle != nil {
		if ev.Bundle, err = json.Marshal(bundle); err != nil {
			return nil, err
		}
	}
	return json.Marshal(ev)
}

// Attest sends primary evidence (which binds ReportNonce) and keeps the
// token the broker answers.
func (s *Session) Attest(ctx context.Context, primary json.RawMessage) (string, error) {
	body, err := json.Marshal(Attestation{RuntimeData: RuntimeData{Nonce: s.challenge, TeePubKey: s.pub},
		TeeEvidence: CompositeEvidence{PrimaryEvidence: primary}})
	if err != nil {
		return "", err
	}
	_, data, err := s.c.do(ctx, http.MethodPost, AttestPath, body, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: SessionCookie, Value: s.cookie.Value}) })
	if err != nil {
		return "", err
	}
	t, err := DecodeTokenResponse(bytes.NewReader(data))
	if err != nil {
		return "", err
	}
	s.token = t.Token
	return t.Token, nil
}

// Token is the session's attestation token ("" before Attest).
func (s *Session) Token() string { return s.token }

// Resource fetches the resource at path (repository/type/tag) with the
// session's token and opens its JWE with the session's key; with the
// client's Key set, the answer must carry the broker's signature.
func (s *Session) Resource(ctx context.Context, path string) ([]byte, error) {
	if s.token == "" {
		return nil, fmt.Errorf("%w: the session is not attested", ErrMessage)
	}
	resp, data, err := s.c.do(ctx, http.MethodGet, ResourcePath+path, nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+s.token) })
	if err != nil {
		return nil, err
	}
	if s.c.Key != nil {
		sig, err := base64.StdEncoding.DecodeString(resp.Header.Get(ResourceSignatureHeader))
		if err != nil || len(s.c.Key) != ed25519.PublicKeySize || !ed25519.Verify(s.c.Key, ResourceSigned(s.challenge, path, data), sig) {
			return nil, fmt.Errorf("%w: the answer for %s is not signed by the broker the manifest pins", ErrMessage, path)
		}
	}
	j, err := DecodeJWE(data)
	if err != nil {
		return nil, err
	}
	return Decrypt(s.priv, j)
}

// ReadJWKS reads a JSON Web Key Set (a file's, or GET JWKSPath's
// answer): its keys must be ES256 keys on P-256, each with a kid.
func ReadJWKS(r io.Reader) (JWKS, error) {
	data, err := readBody(r)
	if err != nil {
		return JWKS{}, err
	}
	var s JWKS
	if err := decodeLoose(data, &s); err != nil {
		return JWKS{}, fmt.Errorf("%w: %v", ErrJWK, err)
	}
	if len(s.Keys) == 0 {
		return JWKS{}, fmt.Errorf("%w: the set has no keys", ErrJWK)
	}
	for i := range s.Keys {
		if _, err := ecdsaOf(&s.Keys[i]); err != nil || s.Keys[i].Kid == "" {
			return JWKS{}, fmt.Errorf("%w: key %d is not an ES256 key with a kid", ErrJWK, i)
		}
	}
	return s, nil
}

// FetchJWKS reads the key set at url (a broker's JWKSPath) with client
// (nil: one with a 30 s timeout).
func FetchJWKS(ctx context.Context, client *http.Client, url string) (JWKS, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return JWKS{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return JWKS{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return JWKS{}, fmt.Errorf("%w: %s: %s", ErrUnavailable, url, resp.Status)
	}
	return ReadJWKS(resp.Body)
}

// Challenge is the session's nonce, as the broker sent it.
func (s *Session) Challenge() string { return s.challenge }

// Cookie is the session's cookie value.
func (s *Session) Cookie() string { return s.cookie.Value }
