package kbs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/veraison/ear"
)

// EARSubmod is the EAR submodule an Ampoule broker appraises in, as
// Trustee's attestation service names its CPU's: a KBS finds the
// tee-pubkey at /submods/cpu0/ear.veraison.annotated-evidence/
// runtime_data_claims/tee-pubkey.
const EARSubmod = "cpu0"

// EARLifetime is how long a token the broker issues is valid.
const EARLifetime = 5 * time.Minute

// MaxToken bounds an encoded token.
const MaxToken = 16 << 10

// Claims are what an EAR token of an Ampoule broker says of a run: the
// verdict (affirming, warning or contraindicated) on its evidence, the
// measurement, profile and backend the evidence binds, the class of its
// evidence (what a resource's derivation is separated by), the reasons,
// the bundle, and the run's tee-pubkey its resources are encrypted to.
type Claims struct {
	Verdict     string       `json:"verdict"`
	Measurement string       `json:"measurement"`
	Profile     string       `json:"profile"`
	Backend     string       `json:"backend"`
	Class       string       `json:"class"`
	Reasons     []string     `json:"reasons"`
	Bundle      *BundleClaim `json:"bundle,omitempty"`
	// Nonce is the challenge's nonce the evidence bound, TeePubKey the
	// key; IssuedAt, Expires and Issuer are the token's own.
	Nonce     string    `json:"-"`
	TeePubKey JWK       `json:"-"`
	IssuedAt  time.Time `json:"-"`
	Expires   time.Time `json:"-"`
	Issuer    string    `json:"-"`
}

// BundleClaim is the bundle a token names; Bound as in the audit trail.
type BundleClaim struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Bound   bool   `json:"bound"`
}

// AmpouleClaim is the name of the token's Ampoule-specific claim.
const AmpouleClaim = "ampoule"

// ErrToken wraps every reason a token is refused.
var ErrToken = errors.New("not a valid attestation token")

// ECDSAJWK is the JWK of an ES256 signing key, with its RFC 7638
// thumbprint as kid.
func ECDSAJWK(pub *ecdsa.PublicKey) (JWK, error) {
	if pub.Curve != elliptic.P256() {
		return JWK{}, fmt.Errorf("%w: an ES256 key is on P-256", ErrJWK)
	}
	e, err := pub.ECDH()
	if err != nil {
		return JWK{}, fmt.Errorf("%w: %v", ErrJWK, err)
	}
	k, _ := JWKFromECDH(e)
	k.Alg, k.Use = "ES256", "sig"
	t := sha256.Sum256([]byte(`{"crv":"` + k.Crv + `","kty":"EC","x":"` + k.X + `","y":"` + k.Y + `"}`))
	k.Kid = b64.EncodeToString(t[:])
	return k, nil
}

// ecdsaOf is the ES256 verification key of a published JWK.
func ecdsaOf(k *JWK) (*ecdsa.PublicKey, error) {
	if k.Kty != "EC" || k.Crv != CurveP256 || (k.Alg != "" && k.Alg != "ES256") {
		return nil, fmt.Errorf("%w: an ES256 key is EC P-256", ErrJWK)
	}
	e, err := k.ECDH()
	if err != nil {
		return nil, err
	}
	raw := e.Bytes()
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
}

// IssueEAR signs c as an EAR (github.com/veraison/ear) with ES256 under
// key (whose JWK kid is kid): eat_profile Trustee's, the verdict as
// submods.cpu0's ear.status, the tee-pubkey and nonce where Trustee's KBS
// reads them, iat, exp and iss, and c's Ampoule fields in the "ampoule"
// claim.
func IssueEAR(key *ecdsa.PrivateKey, kid string, c Claims, verifierBuild string) (string, error) {
	status, err := ear.ToTrustTier(c.Verdict)
	if err != nil || status == nil || *status == ear.TrustTierNone {
		return "", fmt.Errorf("%w: the verdict %q", ErrToken, c.Verdict)
	}
	profile := ear.EatTrusteeProfile
	iat := c.IssuedAt.Unix()
	developer := "https://github.com/ampoule-run/ampoule"
	policy := "policy:ampoule"
	annotated := map[string]any{"runtime_data_claims": map[string]any{"nonce": c.Nonce, "tee-pubkey": c.TeePubKey}}
	ar := ear.AttestationResult{
		Profile:    &profile,
		IssuedAt:   &iat,
		VerifierID: &ear.VerifierIdentity{Build: &verifierBuild, Developer: &developer},
		Submods: map[string]*ear.Appraisal{EARSubmod: {
			Status:              status,
			AppraisalPolicyID:   &policy,
			AppraisalExtensions: ear.AppraisalExtensions{VeraisonAnnotatedEvidence: &annotated},
		}},
	}
	if c.Nonce != "" && len(c.Nonce) >= 8 && len(c.Nonce) <= 88 {
		ar.Nonce = &c.Nonce
	}
	// ear's own Sign sets no exp; the token is built from its claims:
	// ear's, as its MarshalJSON validates and writes them (an object
	// whose members are EAR's own names), with exp, iss and the Ampoule
	// claim added before the closing brace. They are marshalled once
	// (jwt's token took each claim apart and marshalled them again: a
	// tenth of the broker's CPU in a KBS cycle; jwx's signer then half of
	// what was left). A member given twice is refused by VerifyEAR, so a
	// later ear that wrote one of the three would fail the tests.
	earJSON, err := ar.MarshalJSON()
	if err != nil || len(earJSON) < 2 || earJSON[len(earJSON)-1] != '}' {
		return "", fmt.Errorf("%w: the EAR claims: %v", ErrToken, err)
	}
	if c.Reasons == nil {
		c.Reasons = []string{}
	}
	ampoule, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToken, err)
	}
	iss, err := json.Marshal(c.Issuer)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrToken, err)
	}
	payload := append(earJSON[:len(earJSON)-1:len(earJSON)-1], `,"`+AmpouleClaim+`":`...)
	payload = append(payload, ampoule...)
	payload = append(payload, `,"exp":`...)
	payload = strconv.AppendInt(payload, c.Expires.Unix(), 10)
	payload = append(payload, `,"iss":`...)
	payload = append(payload, iss...)
	payload = append(payload, '}')
	return signES256(key, kid, payload)
}

// VerifyEAR checks token against the published keys: its header names
// one of them (kid) and ES256, the signature is that key's, it is an EAR
// (ear's own Verify), it is not expired at now nor issued after it, and
// its Ampoule claims are whole and agree with its EAR status. It returns
// the claims.
func VerifyEAR(token string, keys JWKS, now time.Time) (*Claims, error) {
	if len(token) > MaxToken {
		return nil, fmt.Errorf("%w: %d bytes", ErrToken, len(token))
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrToken)
	}
	rawHdr, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: the header is not base64url", ErrToken)
	}
	var hdr struct {
		Alg  string          `json:"alg"`
		Kid  string          `json:"kid"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := decodeLoose(rawHdr, &hdr); err != nil || hdr.Alg != "ES256" || hdr.Crit != nil {
		return nil, fmt.Errorf("%w: the header is not ES256 (alg %q)", ErrToken, hdr.Alg)
	}
	i := slices.IndexFunc(keys.Keys, func(k JWK) bool { return k.Kid == hdr.Kid })
	if i < 0 {
		return nil, fmt.Errorf("%w: signed by a key not published (kid %q)", ErrToken, hdr.Kid)
	}
	pub, err := ecdsaOf(&keys.Keys[i])
	if err != nil {
		return nil, err
	}
	// The signature alone is jws's to check; the claims are read once,
	// below (jwt.Parse read them into a token of its own first: a tenth
	// of a KBS cycle's CPU).
	payload, err := jws.Verify([]byte(token), jws.WithKey(jwa.ES256(), pub))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrToken, err)
	}
	// The signature is checked: the claims must be an EAR, as ear reads
	// one.
	var ar ear.AttestationResult
	if err := ar.UnmarshalJSON(payload); err != nil {
		return nil, fmt.Errorf("%w: not an EAR: %v", ErrToken, err)
	}
	var body struct {
		Exp     *int64          `json:"exp"`
		Iat     *int64          `json:"iat"`
		Nbf     *int64          `json:"nbf"`
		Iss     string          `json:"iss"`
		Ampoule json.RawMessage `json:"ampoule"`
	}
	if err := decodeLoose(payload, &body); err != nil {
		return nil, fmt.Errorf("%w: the claims: %v", ErrToken, err)
	}
	switch {
	case body.Exp == nil || body.Iat == nil:
		return nil, fmt.Errorf("%w: no exp or no iat", ErrToken)
	case time.Unix(*body.Iat, 0).After(now):
		return nil, fmt.Errorf("%w: issued after now (iat %s)", ErrToken, time.Unix(*body.Iat, 0).UTC().Format(time.RFC3339))
	case body.Nbf != nil && time.Unix(*body.Nbf, 0).After(now):
		return nil, fmt.Errorf("%w: not valid before %s", ErrToken, time.Unix(*body.Nbf, 0).UTC().Format(time.RFC3339))
	case body.Ampoule == nil:
		return nil, fmt.Errorf("%w: no Ampoule claims", ErrToken)
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(body.Ampoule))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: the Ampoule claims: %v", ErrToken, err)
	}
	c.IssuedAt, c.Expires, c.Issuer = time.Unix(*body.Iat, 0).UTC(), time.Unix(*body.Exp, 0).UTC(), body.Iss
	if !now.Before(c.Expires) {
		return nil, fmt.Errorf("%w: expired at %s", ErrToken, c.Expires.Format(time.RFC3339))
	}
	sub := ar.Submods[EARSubmod]
	if sub == nil || sub.Status == nil || sub.Status.String() != c.Verdict || c.Measurement == "" {
		return nil, fmt.Errorf("%w: the EAR status and the Ampoule verdict disagree", ErrToken)
	}
	if sub.VeraisonAnnotatedEvidence == nil {
		return nil, fmt.Errorf("%w: no tee-pubkey", ErrToken)
	}
	rd, _ := (*sub.VeraisonAnnotatedEvidence)["runtime_data_claims"].(map[string]any)
	rawKey, _ := json.Marshal(rd["tee-pubkey"])
	k, err := DecodeJWK(rawKey)
	if err != nil {
		return nil, fmt.Errorf("%w: the tee-pubkey: %v", ErrToken, err)
	}
	c.TeePubKey = *k
	c.Nonce, _ = rd["nonce"].(string)
	return &c, nil
}

// Report is the claims as JSON shows them to a person: the verdict's
// claims with the token's own times, issuer and key, which the token's
// encoding keeps apart.
type Report struct {
	*Claims
	IssuedAt  time.Time `json:"issued_at"`
	Expires   time.Time `json:"expires"`
	Issuer    string    `json:"issuer"`
	TeePubKey JWK       `json:"tee_pubkey"`
}

// Report is c with the token's own fields shown.
func (c *Claims) Report() Report {
	return Report{c, c.IssuedAt, c.Expires, c.Issuer, c.TeePubKey}
}

// WriteText writes the claims for a person: the verdict and what it is
// about, the bundle named (claimed, unless the evidence binds it), who
// issued the token and until when it holds, and the verdict's reasons.
func (c *Claims) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%s: %s evidence, profile %s, measurement %s\n", c.Verdict, c.Backend, c.Profile, c.Measurement)
	if b := c.Bundle; b != nil {
		bound := ""
		if !b.Bound {
			bound = " (claimed)"
		}
		fmt.Fprintf(w, "bundle %s %s%s\n", b.Name, b.Version, bound)
	}
	fmt.Fprintf(w, "issued %s by %s, expires %s\n", c.IssuedAt.Format(time.RFC3339), c.Issuer, c.Expires.Format(time.RFC3339))
	for _, reason := range c.Reasons {
		fmt.Fprintf(w, "  - %s\n", reason)
	}
}
