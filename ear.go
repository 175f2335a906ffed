package ampoule

import (
	"context"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
)

// VerifyEAR checks an EAR token against a broker's key set at now, and
// returns its claims whatever its verdict, with an evidence-refused error
// when that is not affirming. token is
// the token itself or a regular file holding one; jwks is a file or an
// http(s) URL serving the broker's keys. A missing jwks is a usage error,
// a key set that does not read jwks-invalid, a token that does not verify
// ear-invalid; an unreadable file carries its flag's hint.
func VerifyEAR(ctx context.Context, token, jwks string, now time.Time) (*kbs.Claims, error) {
	if jwks == "" {
		return nil, errcode.Errorf(errcode.Usage, "--ear needs --jwks FILE|URL, the broker's keys").WithHint("the broker publishes them at " + kbs.JWKSPath)
	}
	if strings.Count(token, ".") != 2 || strings.ContainsAny(token, "/ ") {
		data, err := regfile.ReadFile(token)
		if err != nil {
			return nil, attest.InputError("--ear", errcode.Errorf(errcode.EARInvalid, "--ear: neither a token nor a file holding one: %v", err))
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
			return nil, attest.InputError("--jwks", errcode.Errorf(errcode.JWKSInvalid, "%v", rerr))
		}
		keys, err = kbs.ReadJWKS(strings.NewReader(string(data)))
	}
	if err != nil {
		return nil, errcode.Errorf(errcode.JWKSInvalid, "%s: %v", jwks, err)
	}
	c, err := kbs.VerifyEAR(token, keys, now)
	if err != nil {
		return nil, errcode.Errorf(errcode.EARInvalid, "%v", err)
	}
	if c.Verdict != "affirming" {
		return c, errcode.Errorf(errcode.EvidenceRefused, "the token's verdict is %s: %s", c.Verdict, strings.Join(c.Reasons, "; "))
	}
	return c, nil
}
