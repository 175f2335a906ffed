package broker

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// The KBS protocol's tee names the broker takes, and the evidence kind
// each is: Trustee's "snp" and "tdx", and Ampoule's own simulator, which
// a policy accepts only with allow_insecure.
const (
	TeeSNP = "snp"
	TeeTDX = "tdx"
	TeeSim = "ampoule-sim"
)

var teeKinds = map[string]string{TeeSNP: snp.Kind, TeeTDX: tdx.Kind, TeeSim: sim.Kind}

// TeeOf is the KBS tee name of an evidence kind ("" for none).
func TeeOf(kind string) string {
	for t, k := range teeKinds {
		if k == kind {
			return t
		}
	}
	return ""
}

// TokenAsked is what an attestation's audit record says was asked for:
// a token, before any resource; and what it says was released when a
// token was issued.
const TokenAsked = "kbs-token"

// SealingKeyResource is the KBS resource path of a run's sealing key:
// the one secret the broker holds of its own, derived for the measurement
// and class of the token's evidence (SealingKey; the broker's repository
// "ampoule" holds nothing else).
const SealingKeyResource = SealingKey

// Errors of a KBS resource decision: a path the store does not hold, or
// one the policy does not grant (which is also what a path granted to
// nobody gets, so that an answer does not tell what the store holds).
var (
	ErrResourceNotFound = ErrNoResource
	ErrResourceDenied   = ErrNotGranted
)

// kbsResourceFor is the KBS endpoint's way to the one decision on a
// resource (resource), for a run whose token has claims c.
func (s *Server) kbsResourceFor(path string, c *kbs.Claims) ([]byte, error) {
	env := tee.Envelope{Measurement: c.Measurement}
	m, err := env.MeasurementBytes()
	if err != nil {
		return nil, err
	}
	return s.resource(path, Claims{Measurement: m, Profile: c.Profile, Backend: c.Backend, Class: c.Class})
}

// JWKS is the set of keys the broker's tokens are signed with.
func (s *Server) JWKS() kbs.JWKS { return kbs.JWKS{Keys: []kbs.JWK{s.earJWK}} }

func (s *Server) kbsRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+kbs.AuthPath, s.kbsAuth)
	mux.HandleFunc("POST "+kbs.AttestPath, s.kbsAttest)
	mux.HandleFunc("GET "+kbs.ResourcePath+"{path...}", s.kbsResource)
	mux.HandleFunc("GET "+kbs.JWKSPath, func(w http.ResponseWriter, r *http.Request) {
		decide(w, "jwks")
		writeJSON(w, http.StatusOK, s.JWKS())
	})
}

// problem answers p, noting it as the request's decision.
func problem(w http.ResponseWriter, name, format string, args ...any) {
	p := kbs.NewProblem(name, fmt.Sprintf(format, args...))
	decide(w, name)
	p.Write(w)
}

// A session's cookie before attestation is "tee.nonce" (the nonce
// base64url): the nonce proves itself (nonceTag) and expires, so a
// session stores nothing until it is answered. After attestation it is
// the token.
func sessionCookie(tee string, nonce []byte, expires time.Time) *http.Cookie {
	return &http.Cookie{Name: kbs.SessionCookie, Value: tee + "." + base64.RawURLEncoding.EncodeToString(nonce), Path: "/kbs/v0", Expires: expires, HttpOnly: true}
}

func (s *Server) kbsAuth(w http.ResponseWriter, r *http.Request) {
	req, err := kbs.DecodeRequest(http.MaxBytesReader(w, r.Body, kbs.MaxBody))
	if err != nil {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Auth failed: deserialize Request: %v", err)
		return
	}
	if req.Version != kbs.ProtocolVersion {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Auth failed: KBS Client Protocol Version Mismatch: expect =%s while the request is %s", kbs.ProtocolVersion, req.Version)
		return
	}
	if _, ok := teeKinds[req.Tee]; !ok {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Auth failed: the broker takes the tee %s, %s or %s, not %q", TeeSNP, TeeTDX, TeeSim, req.Tee)
		return
	}
	expires := s.Now().Add(NonceLifetime).UTC()
	nonce := s.newNonce(expires)
	http.SetCookie(w, sessionCookie(req.Tee, nonce, expires))
	decide(w, "challenge")
	writeJSON(w, http.StatusOK, kbs.Challenge{Nonce: base64.StdEncoding.EncodeToString(nonce), ExtraParams: json.RawMessage(`""`)})
}

// kbsAttest judges an Attestation: every decision is audited before
// the token, or the refusal, is answered.
func (s *Server) kbsAttest(w http.ResponseWriter, r *http.Request) {
	now := s.Now()
	rec := AuditRecord{Time: now.UTC(), Remote: remoteHost(r), Asked: []string{TokenAsked}}
	cookie, err := r.Cookie(kbs.SessionCookie)
	if err != nil {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Attest failed: cookie not found")
		return
	}
	teeName, nonceText, ok := strings.Cut(cookie.Value, ".")
	nonce, err := base64.RawURLEncoding.DecodeString(nonceText)
	kind, known := teeKinds[teeName]
	if !ok || err != nil || !known {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Attest failed: session not found")
		return
	}
	att, err := kbs.DecodeAttestation(http.MaxBytesReader(w, r.Body, kbs.MaxBody))
	if err != nil {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Attest failed: deserialize Attestation: %v", err)
		return
	}
	if att.RuntimeData.Nonce != base64.StdEncoding.EncodeToString(nonce) {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Attest failed: the nonce in the handshake session is different from the client side in KBS protocol's Attestation message")
		return
	}
	if stale := s.checkNonce(nonce, now); stale != "" {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Attest failed: session expired or not issued here: %s", stale)
		return
	}
	if att.TeeEvidence.AdditionalEvidence != "" {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Attest failed: the broker verifies no additional evidence; send it empty")
		return
	}
	env, bundle, err := ampouleEvidence(teeName, att.TeeEvidence.PrimaryEvidence, now)
	if err != nil {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Attest failed: %v", err)
		return
	}
	if env.Kind != kind {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Attest failed: the session is for %s evidence, not %s", teeName, env.Kind)
		return
	}
	if _, err := profiles.Get(env.Profile); err != nil {
		problem(w, kbs.ProblemAttestation, "Attestation error: RCAR handshake Attest failed: the evidence names no known profile")
		return
	}
	rec.Kind, rec.Profile, rec.Measurement = env.Kind, env.Profile, env.Measurement
	var unbound string
	rec.Bundle, unbound = bundle.bind(env.Measurement, env.Profile)
	policy := s.policy.Load()
	if policy == nil {
		problem(w, kbs.ProblemInternal, "the broker has no policy")
		return
	}
	key := &att.RuntimeData.TeePubKey
	// KBS's binding: the envelope's nonce is the runtime data's hash, so
	// the evidence binds the challenge's nonce and the tee-pubkey; and
	// Ampoule's: the report data binds that with the measurement and the
	// runtime key, which is the tee-pubkey's point.
	want := kbs.RuntimeDataHash(att.RuntimeData.Nonce, key, att.TeeEvidence.AdditionalEvidence)
	status, reasons, class := string(attest.Contraindicated), []string{}, ""
	pub, keyErr := key.ECDH()
	switch {
	case unbound != "":
		reasons = append(reasons, unbound)
	case !bytes.Equal(env.Nonce, want[:]):
		reasons = append(reasons, "the evidence's nonce is not the hash of the runtime data (nonce and tee-pubkey)")
	case keyErr != nil || !bytes.Equal(pub.Bytes(), env.RuntimeKey):
		reasons = append(reasons, "the evidence's runtime key is not the tee-pubkey")
	default:
		status, reasons, class = s.judge(env, policy, now)
	}
	var token string
	claims := kbs.Claims{Measurement: env.Measurement, Profile: env.Profile, Backend: env.Kind, Class: class, Nonce: att.RuntimeData.Nonce,
		TeePubKey: *key, IssuedAt: now.UTC().Truncate(time.Second), Issuer: "ampoule-broker"}
	claims.Expires = claims.IssuedAt.Add(kbs.EARLifetime)
	if rec.Bundle != nil {
		claims.Bundle = &kbs.BundleClaim{Name: rec.Bundle.Name, Version: rec.Bundle.Version, Bound: rec.Bundle.Bound}
	}
	// The token is signed before the transaction, which only decides
	// whether it is answered: the nonce is used and the decision recorded
	// in one transaction (shared with concurrent decisions, one fsync:
	// commit.go), and without its audit record no token is answered. The
	// transaction may run more than once: it starts from the verdict each
	// time.
	var signed string
	if status == string(attest.Affirming) {
		claims.Verdict, claims.Reasons = status, reasons
		if signed, err = kbs.IssueEAR(s.earKey, s.earJWK.Kid, claims, "ampoule broker "+s.Version); err != nil {
			status, class = string(attest.Contraindicated), ""
			reasons = append(reasons, "the token could not be signed: "+err.Error())
		}
	}
	verdict, verdictReasons := status, reasons
	err = s.commit(func(tx *bolt.Tx) error {
		status, reasons, token = verdict, slices.Clone(verdictReasons), signed
		fresh, err := useNonce(tx, nonce, now)
		if err != nil {
			return err
		}
		if !fresh {
			status, token = string(attest.Contraindicated), ""
			reasons = append(reasons, reasonUsed)
		}
		// An issued token is a credential released: its record is kept
		// one by one and never pruned, as a resource's is, where a
		// refusal's is within the audit budget.
		rec.Status, rec.Reasons, rec.Released = status, reasons, nil
		if token != "" {
			rec.Released = []string{TokenAsked}
		}
		return s.record(tx, rec)
	})
	if err != nil {
		problem(w, kbs.ProblemInternal, "the broker could not record its decision, so it answered none")
		return
	}
	if token == "" {
		problem(w, kbs.ProblemAttestation, "Attestation error: the evidence is %s: %s", status, strings.Join(reasons, "; "))
		return
	}
	issued := claims
	issued.Reasons = slices.Clone(verdictReasons)
	s.tokens.add(token, &issued)
	http.SetCookie(w, &http.Cookie{Name: kbs.SessionCookie, Value: token, Path: "/kbs/v0", Expires: claims.Expires, HttpOnly: true})
	decide(w, status)
	writeJSON(w, http.StatusOK, kbs.TokenResponse{Token: token})
}

// ampouleEvidence reads the primary evidence of an Ampoule run. Trustee's
// own evidence for the tee (a TDX quote, verified at now to Intel's root;
// an SNP report as the sev crate writes it) is read too, and refused: it
// binds no Ampoule measurement.
func ampouleEvidence(teeName string, primary json.RawMessage, now time.Time) (*tee.Envelope, *Bundle, error) {
	// An Ampoule run's evidence is read once, strictly; only what is not
	// one is read again, for what else it is.
	var ev kbs.AmpouleEvidence
	dec := json.NewDecoder(bytes.NewReader(primary))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil || ev.Envelope == nil {
		return nil, nil, notAmpouleEvidence(teeName, primary, err, now)
	}
	env, err := tee.DecodeEnvelope(ev.Envelope)
	if err != nil {
		return nil, nil, err
	}
	var bundle *Bundle
	if len(ev.Bundle) > 0 {
		bundle = &Bundle{}
		dec := json.NewDecoder(bytes.NewReader(ev.Bundle))
		dec.DisallowUnknownFields()
		if err := dec.Decode(bundle); err != nil {
			return nil, nil, fmt.Errorf("the Ampoule bundle: %v", err)
		}
	}
	return env, bundle, nil
}

// notAmpouleEvidence is why primary, which did not read as an Ampoule
// run's evidence (strictErr), is refused: an Ampoule envelope beside
// members it does not know, or not an object; or Trustee's own evidence
// for the tee (a TDX quote, verified at now to Intel's root; an SNP
// report as the sev crate writes it), which is read and refused, as it
// binds no Ampoule measurement.
func notAmpouleEvidence(teeName string, primary json.RawMessage, strictErr error, now time.Time) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(primary, &probe); err != nil {
		return fmt.Errorf("the primary evidence is not a JSON object")
	}
	if _, ok := probe["ampoule-envelope"]; ok {
		if strictErr == nil {
			return errors.New("the Ampoule evidence has a null envelope")
		}
		return fmt.Errorf("the Ampoule evidence: %v", strictErr)
	}
	switch teeName {
	case TeeTDX:
		var e kbs.TDXEvidence
		if err := json.Unmarshal(primary, &e); err != nil || e.Quote == "" {
			return fmt.Errorf("the primary evidence is neither an Ampoule envelope nor Trustee's TDX evidence")
		}
		quote, err := base64.StdEncoding.DecodeString(e.Quote)
		if err != nil {
			return fmt.Errorf("the TDX evidence's quote is not base64")
		}
		if _, err := tdx.Verify(quote, now); err != nil {
			return fmt.Errorf("the TDX evidence's quote does not verify: %v", err)
		}
	case TeeSNP:
		var e kbs.SNPEvidence
		if err := json.Unmarshal(primary, &e); err != nil || len(e.AttestationReport) == 0 {
			return fmt.Errorf("the primary evidence is neither an Ampoule envelope nor Trustee's SNP evidence")
		}
		raw, err := kbs.SNPReportFromTrustee(e.AttestationReport)
		if err != nil {
			return err
		}
		if _, err := snp.ReportDebug(raw); err != nil {
			return fmt.Errorf("the SNP evidence's report does not read: %v", err)
		}
	default:
		return fmt.Errorf("the primary evidence is not an Ampoule envelope")
	}
	return fmt.Errorf("the %s evidence of Trustee's shape binds no Ampoule measurement: an Ampoule run sends its evidence envelope (ampoule-envelope)", teeName)
}

// resourcePart is one part of a resource path. It is compiled when first
// used: as a package variable every process of the launcher, a runner
// too, compiled it at start-up (its bounded repeat is 128 copies).
var resourcePart = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`) })

// bearer is the request's token: the Authorization header's, or an
// attested session's cookie.
func bearer(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		return strings.TrimSpace(tok), ok
	}
	if c, err := r.Cookie(kbs.SessionCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

func (s *Server) kbsResource(w http.ResponseWriter, r *http.Request) {
	now := s.Now()
	path := r.PathValue("path")
	parts := strings.Split(path, "/")
	if len(parts) != 3 || !resourcePart().MatchString(parts[0]) || !resourcePart().MatchString(parts[1]) || !resourcePart().MatchString(parts[2]) {
		problem(w, kbs.ProblemInvalidRequestPath, "Request path %s is invalid", strings.ToValidUTF8(truncate(path, 200), ""))
		return
	}
	tok, ok := bearer(r)
	if !ok || tok == "" {
		problem(w, kbs.ProblemTokenNotFound, "Attestation Token not found")
		return
	}
	if !strings.Contains(tok, ".") || strings.Count(tok, ".") == 1 {
		problem(w, kbs.ProblemTokenNotFound, "Attestation Token not found: the session is not attested")
		return
	}
	rec := AuditRecord{Time: now.UTC(), Remote: remoteHost(r), Asked: []string{path}, Released: nil}
	claims, ok := s.tokens.get(tok, now)
	var err error
	if !ok {
		claims, err = kbs.VerifyEAR(tok, s.JWKS(), now)
	}
	if err != nil {
		// A token this broker did not sign, or expired: no claims to
		// audit but the refusal.
		rec.Status, rec.Reasons = string(attest.Contraindicated), []string{"the token was refused: " + err.Error()}
		if s.commit(func(tx *bolt.Tx) error { return s.record(tx, rec) }) != nil {
			problem(w, kbs.ProblemInternal, "the broker could not record its decision, so it answered none")
			return
		}
		problem(w, kbs.ProblemTokenVerifier, "Token Verifier error: %v", err)
		return
	}
	rec.Kind, rec.Profile, rec.Measurement = claims.Backend, claims.Profile, claims.Measurement
	if b := claims.Bundle; b != nil {
		rec.Bundle = &AuditBundle{Name: b.Name, Version: b.Version, Bound: b.Bound}
	}
	var body []byte
	var refusal error
	if claims.Verdict != string(attest.Affirming) {
		refusal = fmt.Errorf("%w: the token's verdict is %s", ErrResourceDenied, claims.Verdict)
	} else if value, err := s.kbsResourceFor(path, claims); err != nil {
		refusal = err
	} else {
		jwe, err := kbs.Encrypt(&claims.TeePubKey, value)
		clear(value)
		if err != nil {
			refusal = fmt.Errorf("the resource could not be encrypted to the tee-pubkey: %w", err)
		} else if body, err = json.Marshal(jwe); err != nil {
			refusal = err
		}
	}
	rec.Status = string(attest.Affirming)
	if refusal != nil {
		rec.Status, rec.Reasons = string(attest.Contraindicated), []string{refusal.Error()}
	} else {
		rec.Released = []string{path}
	}
	// Audit before answer.
	if err := s.commit(func(tx *bolt.Tx) error { return s.record(tx, rec) }); err != nil {
		problem(w, kbs.ProblemInternal, "the broker could not record its decision, so it released nothing")
		return
	}
	switch {
	case errors.Is(refusal, ErrResourceNotFound):
		problem(w, kbs.ProblemInvalidRequestPath, "Request path %s is invalid: %v", path, refusal)
		return
	case errors.Is(refusal, ErrResourceDenied):
		problem(w, kbs.ProblemPolicyDeny, "Access denied by policy: %v", refusal)
		return
	case refusal != nil:
		problem(w, kbs.ProblemInternal, "Plugin internal error: %v", refusal)
		return
	}
	w.Header().Set(kbs.ResourceSignatureHeader, base64.StdEncoding.EncodeToString(ed25519.Sign(s.signer, kbs.ResourceSigned(claims.Nonce, path, body))))
	w.Header().Set("Content-Type", "application/json")
	decide(w, "released")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
