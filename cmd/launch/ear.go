package main

import (
	"context"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/errcode"
)

// verifyEAR checks an EAR token (the token itself, or a file holding it)
// against the key set in jwks (a file, or an http(s) URL), at now: it
// prints the claims and exits 0 only when the token is valid and
// affirming.
func verifyEAR(ctx context.Context, e *cliEnv, token, jwks string, now time.Time, asJSON bool) int {
	c, err := ampoule.VerifyEAR(ctx, token, jwks, now)
	if err != nil {
		return e.fail(err)
	}
	if asJSON {
		writeJSON(e, struct {
			*kbs.Claims
			IssuedAt  time.Time `json:"issued_at"`
			Expires   time.Time `json:"expires"`
			Issuer    string    `json:"issuer"`
			TeePubKey kbs.JWK   `json:"tee_pubkey"`
		}{c, c.IssuedAt, c.Expires, c.Issuer, c.TeePubKey})
	} else {
		c.WriteText(e.stdout)
	}
	if c.Verdict != "affirming" {
		return e.fail(errcode.Errorf(errcode.EvidenceRefused, "the token's verdict is %s: %s", c.Verdict, strings.Join(c.Reasons, "; ")))
	}
	return 0
}
