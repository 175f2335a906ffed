package broker

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// NonceLifetime is how long a challenge's nonce may be answered.
const NonceLifetime = 2 * time.Minute

// Buckets of the broker's database.
var (
	bucketKeys = []byte("keys")
	// bucketUsed holds the nonces decisions were taken on, until they
	// expire: the key is the nonce's expiry and random part, so the
	// expired ones are a prefix.
	bucketUsed = []byte("used-nonces")
	// bucketAudit holds every decision that released something, and
	// those recorded before refusals had a bucket of their own.
	bucketAudit = []byte("audit")
	// bucketRefusals holds refused decisions within the audit budget,
	// under the same sequence as bucketAudit.
	bucketRefusals = []byte("audit-refusals")
	// bucketMeta holds the audit budget's state.
	bucketMeta = []byte("meta")
	// bucketNonces held every challenge issued, before nonces carried
	// their own proof; Open removes it.
	bucketNonces = []byte("nonces")
)

// Server is a broker over one bbolt database (its keys, the nonces used
// and the audit trail) and one policy.
type Server struct {
	db       *bolt.DB
	policy   atomic.Pointer[attest.Policy]
	signer   ed25519.PrivateKey
	master   []byte
	nonceKey []byte
	// earKey signs the EAR tokens of the KBS endpoints; earJWK is its
	// published key.
	earKey *ecdsa.PrivateKey
	earJWK kbs.JWK
	// Now is the clock; tests pin it.
	Now func() time.Time
	// Verify holds verification options beyond the nonce and the time
	// (test-only roots for fake TEEs); empty in production.
	Verify attest.Options
	// TDXCollateral, if set, gives the collateral a TDX quote's TCB
	// status is judged by (a tdx.CollateralSource's Fetch); without it,
	// or when it fails, TCB status is not judged and a policy with
	// tdx_require_tcb_up_to_date refuses.
	TDXCollateral func(quote []byte) (*tdx.Collateral, error)
	// Budget bounds the audit trail's refused decisions; Open sets
	// DefaultBudget.
	Budget AuditBudget
	// RequestLog, if set, gets one line per request (see Handler).
	RequestLog io.Writer
	// Version is the broker's version, as GET / names it.
	Version string

	// commits queues decisions to the one committer (commit.go).
	commits *committer
	// tokens are the EAR tokens answered lately (tokens.go).
	tokens    *issuedTokens
	closeOnce sync.Once
}

// ErrDatabase wraps every reason the database cannot be opened.
var ErrDatabase = errors.New("the broker database cannot be opened")

// ErrPolicyUnsafe wraps every reason the broker refuses to serve a
// policy that parses.
var ErrPolicyUnsafe = errors.New("the broker does not serve this policy")

// CheckPolicy says why the broker must not serve p, or nil: a policy that
// accepts the simulator must pin the simulator keys it accepts (sim_keys),
// or say sim_keys = "any" explicitly, since anyone can make a simulator
// key and evidence under it.
func CheckPolicy(p *attest.Policy) error {
	if p != nil && p.SimUnpinned() {
		return fmt.Errorf("%w: it accepts the simulator (allow_insecure, backend sim) but pins no simulator key, so anyone's simulator would obtain this measurement's insecure-class key; set sim_keys to the keys of the machines you trust, or sim_keys = %q to accept anyone's", ErrPolicyUnsafe, attest.AnySimKey)
	}
	return nil
}

// Open opens (or makes, with fresh keys) the broker database at path and
// serves policy, which CheckPolicy must accept (nil serves nothing yet).
// The database is held by one process at a time.
func Open(path string, policy *attest.Policy) (*Server, error) {
	if err := CheckPolicy(policy); err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is in use by another broker", ErrDatabase, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDatabase, err)
	}
	s := &Server{db: db, Now: time.Now, Budget: DefaultBudget, commits: newCommitter(), tokens: newIssuedTokens()}
	s.policy.Store(policy)
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketUsed, bucketAudit, bucketRefusals, bucketMeta, bucketResources} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketNonces) != nil {
			if err := tx.DeleteBucket(bucketNonces); err != nil {
				return err
			}
		}
		keys := tx.Bucket(bucketKeys)
		if keys.Get([]byte("signing")) == nil {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			master := make([]byte, 32)
			rand.Read(master)
			if err := keys.Put([]byte("signing"), priv.Seed()); err != nil {
				return err
			}
			if err := keys.Put([]byte("master"), master); err != nil {
				return err
			}
		}
		if keys.Get([]byte("nonce")) == nil {
			k := make([]byte, 32)
			rand.Read(k)
			if err := keys.Put([]byte("nonce"), k); err != nil {
				return err
			}
		}
		if keys.Get([]byte("ear")) == nil {
			k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				return err
			}
			d, err := k.Bytes()
			if err != nil {
				return err
			}
			if err := keys.Put([]byte("ear"), d); err != nil {
				return err
			}
		}
		earKey, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), keys.Get([]byte("ear")))
		if err != nil {
			return errors.New("its token key is damaged")
		}
		if s.earJWK, err = kbs.ECDSAJWK(&earKey.PublicKey); err != nil {
			return err
		}
		s.earKey = earKey
		seed, master, nonceKey := keys.Get([]byte("signing")), keys.Get([]byte("master")), keys.Get([]byte("nonce"))
		if len(seed) != ed25519.SeedSize || len(master) != 32 || len(nonceKey) != 32 {
			return errors.New("its keys are damaged")
		}
		s.signer = ed25519.NewKeyFromSeed(seed)
		s.master = append([]byte(nil), master...)
		s.nonceKey = append([]byte(nil), nonceKey...)
		return migrateRefusals(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %v", ErrDatabase, err)
	}
	go s.runCommits()
	return s, nil
}

// Close closes the database, once the decisions being written are; a
// decision not yet being written is not answered.
func (s *Server) Close() error {
	s.stopCommits()
	return s.db.Close()
}

// PublicKey is the key the broker signs its answers with, for manifests
// to pin.
func (s *Server) PublicKey() ed25519.PublicKey { return s.signer.Public().(ed25519.PublicKey) }

// SetPolicy replaces the policy (tests, and a broker told to reload) if
// CheckPolicy accepts it; otherwise the policy served stays as it was.
func (s *Server) SetPolicy(p *attest.Policy) error {
	if err := CheckPolicy(p); err != nil {
		return err
	}
	s.policy.Store(p)
	return nil
}

// Handler serves the protocol, and at GET / the service's name, version
// and endpoints. With RequestLog set, each request ends with one line
// there: time, remote host, method, path, status, decision (the verdict,
// or why none was taken) and duration, and nothing of its body or
// headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("POST "+ChallengePath, s.challenge)
	mux.HandleFunc("POST "+ReleasePath, s.release)
	s.kbsRoutes(mux)
	if s.RequestLog == nil {
		return mux
	}
	return logRequests(mux, s.RequestLog, time.Now)
}

// endpoints are the protocol's, as GET / lists them.
func (s *Server) endpoints() []string {
	return []string{"POST " + ChallengePath, "POST " + ReleasePath, "POST " + kbs.AuthPath, "POST " + kbs.AttestPath, "GET " + kbs.ResourcePath + "{repository}/{type}/{tag}", "GET " + kbs.JWKSPath}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	if e, ok := v.(errorBody); ok && code >= 400 {
		decide(w, decisionFor(code, e.Error))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error string `json:"error"`
}

// A nonce is expiry (8 bytes, Unix nanoseconds, big endian) ‖ random (16
// bytes) ‖ HMAC-SHA256(nonce key, domain ‖ expiry ‖ random): it proves by
// itself that this broker issued it and until when it may be answered, so
// a challenge stores nothing.
const (
	nonceIDSize = 8 + 16
	nonceSize   = nonceIDSize + sha256.Size
	nonceDomain = "ampoule/broker/nonce/v1\x00"
)

func (s *Server) nonceTag(id []byte) []byte {
	m := hmac.New(sha256.New, s.nonceKey)
	m.Write([]byte(nonceDomain))
	m.Write(id)
	return m.Sum(nil)
}

// newNonce is a nonce expiring at expires.
func (s *Server) newNonce(expires time.Time) []byte {
	id := binary.BigEndian.AppendUint64(make([]byte, 0, nonceSize), uint64(expires.UnixNano()))
	id = append(id, make([]byte, 16)...)
	rand.Read(id[8:nonceIDSize])
	return append(id, s.nonceTag(id)...)
}

// checkNonce says why nonce cannot be answered now, or "" if it was
// issued here and has not expired (whether it was used is for the used
// nonces to say).
func (s *Server) checkNonce(nonce []byte, now time.Time) string {
	if len(nonce) != nonceSize || !hmac.Equal(nonce[nonceIDSize:], s.nonceTag(nonce[:nonceIDSize])) {
		return "the nonce was not issued by this broker"
	}
	expires := time.Unix(0, int64(binary.BigEndian.Uint64(nonce)))
	if now.After(expires) {
		return "the nonce expired at " + expires.UTC().Format(time.RFC3339)
	}
	if expires.Sub(now) > NonceLifetime+time.Minute {
		// Only this broker's clock, set far ahead once, makes these.
		return "the nonce was issued for longer than a nonce lives (the broker's clock moved back)"
	}
	return ""
}

const reasonUsed = "the nonce was used already"

func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	expires := s.Now().Add(NonceLifetime).UTC()
	decide(w, "challenge")
	writeJSON(w, http.StatusOK, Challenge{Nonce: s.newNonce(expires), Expires: expires})
}

// useNonce records that a decision was taken on nonce (which checkNonce
// accepted): false if one was already. It forgets expired nonces on the
// way, a bounded number per call.
func useNonce(tx *bolt.Tx, nonce []byte, now time.Time) (bool, error) {
	b := tx.Bucket(bucketUsed)
	c := b.Cursor()
	cut := binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))
	for n := 0; n < 256; n++ {
		k, _ := c.First()
		if k == nil || (len(k) >= 8 && bytes.Compare(k[:8], cut) >= 0) {
			break
		}
		if err := c.Delete(); err != nil {
			return false, err
		}
	}
	id := nonce[:nonceIDSize]
	if b.Get(id) != nil {
		return false, nil
	}
	return true, b.Put(id, []byte{})
}

// sealingKey is the measurement's sealing key for evidence of a class
// (attest.Result.Class): the simulator's or a debuggable TEE's evidence,
// which a host can make or read, never obtains the key a protected run of
// the same measurement gets. A measurement the policy lists under a bundle
// ([bundles]) gets that bundle's key, the same for each of its versions,
// so that a later one opens an earlier one's store; the two derivations
// are kept apart by their labels.
func (s *Server) sealingKey(policy *attest.Policy, measurement [48]byte, class string) ([]byte, error) {
	if name, ok := policy.BundleOf(measurement); ok {
		return hkdf.Key(sha256.New, s.master, []byte(name), "ampoule/broker/bundle-sealing-key/v1 "+class, 32)
	}
	return hkdf.Key(sha256.New, s.master, measurement[:], "ampoule/broker/sealing-key/v1 "+class, 32)
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) {
	now := s.Now()
	rec := AuditRecord{Time: now.UTC(), Remote: remoteHost(r)}
	req, err := DecodeReleaseRequest(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	env, err := tee.DecodeEnvelope(req.Evidence)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
		return
	}
	// Only what could be a run's evidence reaches a decision (and the
	// audit trail): a known kind and profile.
	if env.Kind != sim.Kind && env.Kind != snp.Kind && env.Kind != tdx.Kind {
		writeJSON(w, http.StatusBadRequest, errorBody{"the evidence is of no known kind"})
		return
	}
	if _, err := profiles.Get(env.Profile); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"the evidence names no known profile"})
		return
	}
	rec.Kind, rec.Profile, rec.Measurement, rec.Asked = env.Kind, env.Profile, env.Measurement, req.Secrets
	var unbound string
	rec.Bundle, unbound = req.Bundle.bind(env.Measurement, env.Profile)
	for _, name := range req.Secrets {
		if !askable(name) {
			writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("the broker releases resources by their path, REPO/TYPE/TAG (its sealing key is %s), not %q", SealingKey, name)})
			return
		}
	}
	policy := s.policy.Load()
	if policy == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"the broker has no policy"})
		return
	}
	// A nonce this broker did not issue, that expired or that was used
	// needs no verdict: the evidence is not judged.
	stale := s.checkNonce(env.Nonce, now)
	if stale == "" && unbound != "" {
		// A bundle whose proof does not make the measurement: the request
		// was altered, and is not judged.
		stale = unbound
	}
	if stale == "" {
		err := s.db.View(func(tx *bolt.Tx) error {
			if tx.Bucket(bucketUsed).Get(env.Nonce[:nonceIDSize]) != nil {
				stale = reasonUsed
			}
			return nil
		})
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, errorBody{"the broker could not read its nonces"})
			return
		}
	}
	resp := &ReleaseResponse{Status: string(attest.Contraindicated), Reasons: []string{stale}, Measurement: env.Measurement}
	var class string
	if stale == "" {
		resp.Status, resp.Reasons, class = s.judge(env, policy, now)
	}
	// Each resource is decided on once the evidence is affirmed: all are
	// released, or none.
	var values map[string][]byte
	defer func() {
		for _, v := range values {
			clear(v)
		}
	}()
	if resp.Status == string(attest.Affirming) {
		values, resp.Refused, resp.Reasons = s.decide(env, class, req.Secrets, resp.Reasons)
		if len(resp.Refused) > 0 {
			resp.Status = string(attest.Contraindicated)
		}
	}
	// The nonce is used, the secrets wrapped and the decision recorded in
	// one transaction: without its audit record, nothing is released.
	err = s.db.Update(func(tx *bolt.Tx) error {
		if stale == "" {
			fresh, err := useNonce(tx, env.Nonce, now)
			if err != nil {
				return err
			}
			if !fresh {
				resp.Status = string(attest.Contraindicated)
				resp.Reasons = append(resp.Reasons, reasonUsed)
			}
		}
		resp.Secrets = nil
		if resp.Status == string(attest.Affirming) {
			secrets, err := s.wrap(env, values)
			if err != nil {
				resp.Status = string(attest.Contraindicated)
				resp.Reasons = append(resp.Reasons, err.Error())
			} else {
				resp.Secrets = secrets
			}
		}
		rec.Status, rec.Reasons, rec.Released = resp.Status, resp.Reasons, nil
		for name := range resp.Secrets {
			rec.Released = append(rec.Released, name)
		}
		slices.Sort(rec.Released)
		return s.record(tx, rec)
	})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{"the broker could not record its decision, so it released nothing"})
		return
	}
	resp.Signature = ed25519.Sign(s.signer, signedBytes(env.Nonce, resp))
	decide(w, resp.Status)
	code := http.StatusOK
	if resp.Status != string(attest.Affirming) {
		code = http.StatusForbidden
	}
	writeJSON(w, code, resp)
}

// decide decides on releasing each of names to the run env's evidence (of
// class) shows: the values if every one is released, else none and the
// names refused, each refusal's reason added to reasons.
func (s *Server) decide(env *tee.Envelope, class string, names, reasons []string) (map[string][]byte, []string, []string) {
	m, err := env.MeasurementBytes()
	if err != nil {
		return nil, sortedNames(names), append(reasons, err.Error())
	}
	c := Claims{Measurement: m, Profile: env.Profile, Backend: env.Kind, Class: class}
	values := map[string][]byte{}
	var refused []string
	for _, name := range sortedNames(names) {
		v, err := s.resource(name, c)
		if err != nil {
			refused = append(refused, name)
			reasons = append(reasons, err.Error())
			continue
		}
		values[name] = v
	}
	if len(refused) > 0 {
		for _, v := range values {
			clear(v)
		}
		return nil, refused, reasons
	}
	return values, nil, reasons
}

// judge verifies env against policy at now (the nonce it binds is the
// envelope's own): the verdict, its reasons (never nil) and the class of
// the evidence.
func (s *Server) judge(env *tee.Envelope, policy *attest.Policy, now time.Time) (string, []string, string) {
	opts := s.Verify
	opts.Nonce, opts.Now = env.Nonce, now
	var collateralNote string
	if env.Kind == tdx.Kind && s.TDXCollateral != nil {
		coll, err := s.TDXCollateral(env.Evidence)
		if err != nil {
			collateralNote = "TCB status not judged: Intel's collateral could not be had: " + err.Error()
		} else {
			opts.TDXCollateral = coll
		}
	}
	result := attest.Verify(env, policy, opts)
	if collateralNote != "" {
		result.Reasons = append(result.Reasons, collateralNote)
	}
	reasons := slices.Clone(result.Reasons)
	if reasons == nil {
		reasons = []string{}
	}
	return string(result.Status), reasons, result.Class()
}

// wrap seals each value to the envelope's runtime key, under its name.
func (s *Server) wrap(env *tee.Envelope, values map[string][]byte) (map[string][]byte, error) {
	pub, err := ecdh.P256().NewPublicKey(env.RuntimeKey)
	if err != nil {
		return nil, fmt.Errorf("the runtime key is not a P-256 public key: %v", err)
	}
	hpub, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for name, value := range values {
		ct, err := hpke.Seal(hpub, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(name, env.Nonce), value)
		if err != nil {
			return nil, err
		}
		out[name] = ct
	}
	return out, nil
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// decisionFor is the request log's decision for an error answer: no
// verdict was taken.
func decisionFor(code int, _ string) string {
	switch {
	case code == http.StatusServiceUnavailable:
		return "no-policy"
	case code >= 500:
		return "failed"
	default:
		return "malformed"
	}
}
