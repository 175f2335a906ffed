package broker

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/tee"
)

// Client asks a broker for secrets from inside the TEE.
type Client struct {
	// URL is the broker's base URL, such as https://broker.example:7443.
	URL string
	// Key is the broker's signing key, as the manifest pins it.
	Key ed25519.PublicKey
	// HTTP is the client to use; nil means one with a 30 s timeout.
	HTTP *http.Client
	// Bundle, if set, names the run's bundle (BundleOf) in each release
	// request, for the broker's audit trail.
	Bundle *Bundle
}

// Errors a client returns, each wrapped with detail.
var (
	// ErrUnavailable: the broker could not be reached or failed.
	ErrUnavailable = errors.New("the broker is unavailable")
	// ErrRefused: the broker judged the evidence and released nothing.
	ErrRefused = errors.New("the broker refused the evidence")
)

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

func (c *Client) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return resp, nil
}

// Challenge asks for a nonce.
func (c *Client) Challenge(ctx context.Context) ([]byte, error) {
	resp, err := c.post(ctx, ChallengePath, []byte("{}"))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: challenge: %s", ErrUnavailable, resp.Status)
	}
	var ch Challenge
	if err := decodeStrict(resp.Body, &ch); err != nil {
		return nil, err
	}
	if len(ch.Nonce) < 16 || len(ch.Nonce) > 64 {
		return nil, fmt.Errorf("%w: a nonce of %d bytes", ErrProtocol, len(ch.Nonce))
	}
	return ch.Nonce, nil
}

// Release sends the envelope (which must bind a nonce from Challenge and
// runtimeKey's public key) and returns the named secrets, unwrapped with
// runtimeKey. The answer must be signed by c.Key.
func (c *Client) Release(ctx context.Context, env *tee.Envelope, runtimeKey *ecdh.PrivateKey, names []string) (map[string][]byte, error) {
	evidence, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(ReleaseRequest{Evidence: evidence, Secrets: names, Bundle: c.Bundle})
	if err != nil {
		return nil, err
	}
	resp, err := c.post(ctx, ReleasePath, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden {
		var e errorBody
		decodeStrict(resp.Body, &e)
		return nil, fmt.Errorf("%w: release: %s %s", ErrUnavailable, resp.Status, e.Error)
	}
	r, err := DecodeReleaseResponse(resp.Body, c.Key, env.Nonce)
	if err != nil {
		return nil, err
	}
	if r.Status != "affirming" && len(r.Refused) > 0 {
		return nil, fmt.Errorf("%w: %w: %s: %s", ErrRefused, ErrNotGranted, strings.Join(r.Refused, ", "), strings.Join(r.Reasons, "; "))
	}
	if r.Status != "affirming" {
		return nil, fmt.Errorf("%w: %s: %s", ErrRefused, r.Status, strings.Join(r.Reasons, "; "))
	}
	if r.Measurement != env.Measurement {
		return nil, fmt.Errorf("%w: the answer is for measurement %s", ErrProtocol, r.Measurement)
	}
	priv, err := hpke.NewDHKEMPrivateKey(runtimeKey)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range names {
		ct, ok := r.Secrets[name]
		if !ok {
			return nil, fmt.Errorf("%w: the answer lacks %q", ErrProtocol, name)
		}
		pt, err := hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(name, env.Nonce), ct)
		if err != nil {
			return nil, fmt.Errorf("%w: %q does not open with the runtime key", ErrProtocol, name)
		}
		out[name] = pt
	}
	return out, nil
}
