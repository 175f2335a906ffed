package broker

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/ampoule-run/ampoule/broker/kbs"
)

// maxIssuedTokens bounds the tokens a broker remembers having answered.
const maxIssuedTokens = 8192

// issuedTokens are the claims of the tokens this broker answered lately,
// by the SHA-256 of each token's bytes. A resource request whose token is
// byte for byte one of them carries claims this broker signed itself, so
// it needs neither the signature checked nor the claims read again (a
// KBS cycle's resource request spent a third of its CPU on that); any
// other token (one from before a restart, or forgotten, or altered in any
// byte) is verified in full, as every token was. A token is remembered
// only once its decision is durable and it is answered, and is served
// from here only within its lifetime: outside it, VerifyEAR says why not.
type issuedTokens struct {
	mu     sync.Mutex
	claims map[[32]byte]*kbs.Claims
	// order holds the remembered hashes, the oldest at next once full.
	order [][32]byte
	next  int
}

func newIssuedTokens() *issuedTokens {
	return &issuedTokens{claims: make(map[[32]byte]*kbs.Claims)}
}

// add remembers token's claims, forgetting the oldest beyond the bound.
func (t *issuedTokens) add(token string, c *kbs.Claims) {
	h := sha256.Sum256([]byte(token))
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.claims[h]; ok {
		return
	}
	if len(t.order) < maxIssuedTokens {
		t.order = append(t.order, h)
	} else {
		delete(t.claims, t.order[t.next])
		t.order[t.next] = h
		t.next = (t.next + 1) % maxIssuedTokens
	}
	t.claims[h] = c
}

// get is the claims of token, if this broker answered it lately and now
// is within its lifetime.
func (t *issuedTokens) get(token string, now time.Time) (*kbs.Claims, bool) {
	if len(token) > kbs.MaxToken {
		return nil, false
	}
	h := sha256.Sum256([]byte(token))
	t.mu.Lock()
	c, ok := t.claims[h]
	t.mu.Unlock()
	if !ok || now.Before(c.IssuedAt) || !now.Before(c.Expires) {
		return nil, false
	}
	return c, true
}
