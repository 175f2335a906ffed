package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
)

// verifyEAR checks an EAR token (the token itself, or a file holding it)
// against the key set in jwks (a file, or an http(s) URL), at now: it
// prints the claims and exits 0 only when the token is valid and
// affirming.
func verifyEAR(ctx context.Context, e *cliEnv, token, jwks string, now time.Time, asJSON bool) int {
	if jwks == "" {
		return e.fail(errcode.Errorf(errcode.Usage, "--ear needs --jwks FILE|URL, the broker's keys").WithHint("the broker publishes them at " + kbs.JWKSPath))
	}
	if strings.Count(token, ".") != 2 || strings.ContainsAny(token, "/ ") {
		data, err := regfile.ReadFile(token)
		if err != nil {
			return e.fail(inputError("--ear", errcode.Errorf(errcode.EARInvalid, "--ear: neither a token nor a file holding one: %v", err)))
		}
		token = strings.TrimSpace(string(data))
	}
	var keys kbs.JWKS
	var err error
	if strings.HasPrefix(jwks, "http://") || strings.HasPrefix(jwks, "https://") {
		keys, err = kbs.FetchJWKS(ctx, nil, jwks)
	} else {
		data, rerr := regfile.ReadFile(jwks)
		if rerr != nil {
			return e.fail(inputError("--jwks", errcode.Errorf(errcode.JWKSInvalid, "%v", rerr)))
		}
		keys, err = kbs.ReadJWKS(strings.NewReader(string(data)))
	}
	if err != nil {
		return e.fail(errcode.Errorf(errcode.JWKSInvalid, "%s: %v", jwks, err))
	}
	c, err := kbs.VerifyEAR(token, keys, now)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.EARInvalid, "%v", err))
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
		fmt.Fprintf(e.stdout, "%s: %s evidence, profile %s, measurement %s\n", c.Verdict, c.Backend, c.Profile, c.Measurement)
		if b := c.Bundle; b != nil {
			bound := ""
			if !b.Bound {
				bound = " (claimed)"
			}
			fmt.Fprintf(e.stdout, "bundle %s %s%s\n", b.Name, b.Version, bound)
		}
		fmt.Fprintf(e.stdout, "issued %s by %s, expires %s\n", c.IssuedAt.Format(time.RFC3339), c.Issuer, c.Expires.Format(time.RFC3339))
		for _, reason := range c.Reasons {
			fmt.Fprintf(e.stdout, "  - %s\n", reason)
		}
	}
	if c.Verdict != "affirming" {
		return e.fail(errcode.Errorf(errcode.EvidenceRefused, "the token's verdict is %s: %s", c.Verdict, strings.Join(c.Reasons, "; ")))
	}
	return 0
}
