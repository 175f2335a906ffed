package broker

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// NonceLifetime is how long a challenge's nonce may be answered.
const NonceLifetime = 2 * time.Minute

// MaxOpenNonces bounds the challenges outstanding at once, so that a
// flood of challenges cannot grow the database without end.
const MaxOpenNonces = 10000

// errTooManyChallenges: MaxOpenNonces are outstanding.
var errTooManyChallenges = errors.New("too many challenges are outstanding; try again shortly")

// Buckets of the broker's database.
var (
	bucketKeys   = []byte("keys")
	bucketNonces = []byte("nonces")
	bucketAudit  = []byte("audit")
)

// Server is a broker over one bbolt database (its keys, the open nonces
// and the audit trail) and one policy.
type Server struct {
	db     *bolt.DB
	policy atomic.Pointer[attest.Policy]
	signer ed25519.PrivateKey
	master []byte
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
}

// ErrDatabase wraps every reason the database cannot be opened.
var ErrDatabase = errors.New("the broker database cannot be opened")

// Open opens (or makes, with fresh keys) the broker database at path and
// serves policy. The database is held by one process at a time.
func Open(path string, policy *attest.Policy) (*Server, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is in use by another broker", ErrDatabase, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDatabase, err)
	}
	s := &Server{db: db, Now: time.Now}
	s.policy.Store(policy)
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketNonces, bucketAudit} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
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
		seed, master := keys.Get([]byte("signing")), keys.Get([]byte("master"))
		if len(seed) != ed25519.SeedSize || len(master) != 32 {
			return errors.New("its keys are damaged")
		}
		s.signer = ed25519.NewKeyFromSeed(seed)
		s.master = append([]byte(nil), master...)
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: %v", ErrDatabase, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Server) Close() error { return s.db.Close() }

// PublicKey is the key the broker signs its answers with, for manifests
// to pin.
func (s *Server) PublicKey() ed25519.PublicKey { return s.signer.Public().(ed25519.PublicKey) }

// SetPolicy replaces the policy (tests, and a broker told to reload).
func (s *Server) SetPolicy(p *attest.Policy) { s.policy.Store(p) }

// Handler serves the protocol.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+ChallengePath, s.challenge)
	mux.HandleFunc("POST "+ReleasePath, s.release)
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	expires := s.Now().Add(NonceLifetime).UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNonces)
		// Forget the expired ones on the way.
		now := s.Now()
		var stale [][]byte
		open := 0
		b.ForEach(func(k, v []byte) error {
			if len(v) != 8 || now.After(time.Unix(0, int64(binary.BigEndian.Uint64(v)))) {
				stale = append(stale, append([]byte(nil), k...))
			} else {
				open++
			}
			return nil
		})
		for _, k := range stale {
			b.Delete(k)
		}
		if open >= MaxOpenNonces {
			return errTooManyChallenges
		}
		return b.Put(nonce, binary.BigEndian.AppendUint64(nil, uint64(expires.UnixNano())))
	})
	if errors.Is(err, errTooManyChallenges) {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{err.Error()})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{"the broker could not store the nonce"})
		return
	}
	writeJSON(w, http.StatusOK, Challenge{Nonce: nonce, Expires: expires})
}

// takeNonce consumes a nonce: true if it was issued here and is not
// expired. Either way it cannot be used again.
func (s *Server) takeNonce(nonce []byte) (bool, error) {
	var ok bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNonces)
		v := b.Get(nonce)
		if v == nil {
			return nil
		}
		ok = len(v) == 8 && !s.Now().After(time.Unix(0, int64(binary.BigEndian.Uint64(v))))
		return b.Delete(nonce)
	})
	return ok, err
}

// AuditRecord is one decision of the broker.
type AuditRecord struct {
	Time        time.Time `json:"time"`
	Remote      string    `json:"remote"`
	Kind        string    `json:"kind"`
	Profile     string    `json:"profile"`
	Measurement string    `json:"measurement"`
	Status      string    `json:"status"`
	Reasons     []string  `json:"reasons"`
	Asked       []string  `json:"asked"`
	Released    []string  `json:"released"`
}

func (s *Server) audit(rec AuditRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), data)
	})
}

// Audit returns every decision, oldest first.
func (s *Server) Audit() ([]AuditRecord, error) {
	var out []AuditRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAudit).ForEach(func(k, v []byte) error {
			var rec AuditRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	return out, err
}

// sealingKey is the measurement's sealing key for evidence of a class
// (attest.Result.Class): the simulator's or a debuggable TEE's evidence,
// which a host can make or read, never obtains the key a protected run of
// the same measurement gets.
func (s *Server) sealingKey(measurement [48]byte, class string) ([]byte, error) {
	return hkdf.Key(sha256.New, s.master, measurement[:], "ampoule/broker/sealing-key/v1 "+class, 32)
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) {
	rec := AuditRecord{Time: s.Now().UTC(), Remote: remoteHost(r)}
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
	for _, name := range req.Secrets {
		if name != SealingKey {
			writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("the broker holds no secret %q (it releases %q)", name, SealingKey)})
			return
		}
	}
	policy := s.policy.Load()
	if policy == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"the broker has no policy"})
		return
	}
	fresh, err := s.takeNonce(env.Nonce)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{"the broker could not read its nonces"})
		return
	}
	opts := s.Verify
	opts.Nonce, opts.Now = env.Nonce, s.Now()
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
	resp := &ReleaseResponse{Status: string(result.Status), Reasons: slices.Clone(result.Reasons), Measurement: env.Measurement}
	if !fresh {
		resp.Status = string(attest.Contraindicated)
		resp.Reasons = append(resp.Reasons, "the nonce was not issued by this broker, was used already, or expired")
	}
	if resp.Reasons == nil {
		resp.Reasons = []string{}
	}
	if resp.Status == string(attest.Affirming) {
		if resp.Secrets, err = s.wrap(env, result.Class(), req.Secrets); err != nil {
			resp.Status, resp.Secrets = string(attest.Contraindicated), nil
			resp.Reasons = append(resp.Reasons, err.Error())
		}
	}
	resp.Signature = ed25519.Sign(s.signer, signedBytes(env.Nonce, resp))
	rec.Status, rec.Reasons = resp.Status, resp.Reasons
	for name := range resp.Secrets {
		rec.Released = append(rec.Released, name)
	}
	// No decision goes unrecorded: without its audit record, nothing is
	// released.
	if err := s.audit(rec); err != nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{"the broker could not record its decision, so it released nothing"})
		return
	}
	code := http.StatusOK
	if resp.Status != string(attest.Affirming) {
		code = http.StatusForbidden
	}
	writeJSON(w, code, resp)
}

// wrap seals each named secret to the envelope's runtime key.
func (s *Server) wrap(env *tee.Envelope, class string, names []string) (map[string][]byte, error) {
	pub, err := ecdh.P256().NewPublicKey(env.RuntimeKey)
	if err != nil {
		return nil, fmt.Errorf("the runtime key is not a P-256 public key: %v", err)
	}
	hpub, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, err
	}
	m, err := env.MeasurementBytes()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range names {
		key, err := s.sealingKey(m, class)
		if err != nil {
			return nil, err
		}
		ct, err := hpke.Seal(hpub, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(name, env.Nonce), key)
		clear(key)
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
