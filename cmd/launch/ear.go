package main

import (
	"context"
	"time"

	"github.com/ampoule-run/ampoule"
)

// verifyEAR checks an EAR token (the token itself, or a file holding it)
// against the key set in jwks (a file, or an http(s) URL), at now: it
// prints the claims and exits 0 only when the token is valid and
// affirming.
func verifyEAR(ctx context.Context, e *cliEnv, token, jwks string, now time.Time, asJSON bool) int {
	c, err := ampoule.VerifyEAR(ctx, token, jwks, now)
	switch {
	case c == nil:
	case asJSON:
		writeJSON(e, c.Report())
	default:
		c.WriteText(e.stdout)
	}
	if err != nil {
		return e.fail(err)
	}
	return 0
}
