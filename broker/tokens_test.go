package broker

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/broker/kbs"
)

// TestIssuedTokensAreTheirClaims: the claims a broker remembers for a
// token it answered are the claims VerifyEAR reads from that token, field
// by field; a token changed in any byte, used before it was issued or
// from its expiry on is not remembered (VerifyEAR judges it); the memory
// is bounded, the oldest forgotten first; and a forgotten token (as after
// a restart) still fetches its resource, verified in full.
func TestIssuedTokensAreTheirClaims(t *testing.T) {
	b := newBroker(t)
	sess, err := b.kbsSession(t, measurementA, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := sess.Token()
	now := time.Now()
	got, ok := b.s.tokens.get(tok, now)
	if !ok {
		t.Fatal("the token answered is not remembered")
	}
	want, err := kbs.VerifyEAR(tok, b.s.JWKS(), now)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IssuedAt.Equal(want.IssuedAt) || !got.Expires.Equal(want.Expires) {
		t.Errorf("times %s %s, the token's %s %s", got.IssuedAt, got.Expires, want.IssuedAt, want.Expires)
	}
	g, w := *got, *want
	g.IssuedAt, g.Expires, w.IssuedAt, w.Expires = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("remembered %+v\nthe token's %+v", g, w)
	}
	for i := range len(tok) {
		altered := []byte(tok)
		altered[i] ^= 0x20
		if _, ok := b.s.tokens.get(string(altered), now); ok {
			t.Fatalf("the token with byte %d changed is remembered", i)
		}
	}
	if _, ok := b.s.tokens.get(tok, want.IssuedAt.Add(-time.Second)); ok {
		t.Error("remembered before it was issued")
	}
	if _, ok := b.s.tokens.get(tok, want.Expires); ok {
		t.Error("remembered at its expiry")
	}
	if _, ok := b.s.tokens.get(tok, want.Expires.Add(-time.Second)); !ok {
		t.Error("forgotten before its expiry")
	}

	// Forgotten (a broker started again): the token is verified in full
	// and still fetches.
	b.s.tokens = newIssuedTokens()
	if _, err := sess.Resource(context.Background(), SealingKeyResource); err != nil {
		t.Fatalf("a token verified in full: %v", err)
	}

	tokens := newIssuedTokens()
	c := &kbs.Claims{IssuedAt: now.Add(-time.Minute), Expires: now.Add(time.Minute)}
	for i := range maxIssuedTokens + 1 {
		tokens.add(fmt.Sprint("token-", i), c)
	}
	if _, ok := tokens.get("token-0", now); ok || len(tokens.claims) != maxIssuedTokens {
		t.Errorf("the oldest is remembered, %d remembered", len(tokens.claims))
	}
	if _, ok := tokens.get(fmt.Sprint("token-", maxIssuedTokens), now); !ok {
		t.Error("the newest is forgotten")
	}
}
