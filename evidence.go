package ampoule

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// AttestConfig is what Attest needs beside the bundle.
type AttestConfig struct {
	// Profile, Backend, SimKey, TEE and Platform are as in Config.
	Profile  string
	Backend  string
	SimKey   string
	TEE      tee.Backend
	Platform *tee.Platform
	// Nonce is the verifier's: 1 to 64 bytes.
	Nonce []byte
	// Warnings is as in Config.
	Warnings io.Writer
}

// Attest measures the bundle at path under cfg.Profile and returns
// evidence binding the measurement, a fresh runtime key and the
// verifier's nonce, as a run's own evidence does (for 'launch verify' or a
// broker). The profile must allow the backend and the bundle the profile.
func Attest(ctx context.Context, path string, cfg AttestConfig) (*tee.Envelope, error) {
	if len(cfg.Nonce) == 0 || len(cfg.Nonce) > 64 {
		return nil, errcode.Errorf(errcode.Usage, "the nonce must be 1 to 64 bytes, not %d", len(cfg.Nonce))
	}
	p, err := profiles.Get(cfg.Profile)
	if err != nil {
		return nil, err
	}
	r := newRun(p, Config{Profile: cfg.Profile, Backend: cfg.Backend, SimKey: cfg.SimKey, TEE: cfg.TEE, Platform: cfg.Platform, Warnings: cfg.Warnings})
	// The bundle before the backend, as a run's begin.
	b, err := loader.Open(path)
	if err != nil {
		return nil, err
	}
	if !b.Manifest.AllowsProfile(p.Name) {
		return nil, errcode.Errorf(errcode.ProfileNotAllowed, "%s allows the profiles %s, not %s", b.Source, strings.Join(b.Manifest.Profiles, ", "), p.Name)
	}
	if err := r.selectBackend(); err != nil {
		return nil, err
	}
	return r.attest(ctx, loader.Measure(b, p.Name), cfg.Nonce, func(msg string) { r.warn("%s", msg) })
}

// backend opens the run's backend once: its evidence and its sealing key
// come from the same one.
func (r *run) backend() (tee.Backend, error) {
	if r.be == nil {
		be, err := OpenBackend(r.kind, r.cfg.SimKey)
		if err != nil {
			return nil, err
		}
		r.be = be
	}
	return r.be, nil
}

// attest attests the run on its backend once: a runtime key made for the
// run and a nonce (the broker's, when the run asks it for a key, else a
// fresh one), bound with the measurement into the report data. The same
// envelope goes to the broker and opens the tenant's log.
func (r *run) attest(ctx context.Context, mm loader.Measurement, nonce []byte, warn func(string)) (*tee.Envelope, error) {
	if r.envelope != nil {
		return r.envelope, nil
	}
	be, err := r.backend()
	if err != nil {
		return nil, err
	}
	if err := r.makeRuntimeKey(); err != nil {
		return nil, err
	}
	if nonce == nil {
		nonce = make([]byte, 32)
		rand.Read(nonce)
	}
	pub := r.runtimeKey.PublicKey().Bytes()
	ev, event, err := attestBound(ctx, be, mm, tee.ReportData(mm, pub, nonce), warn)
	if err != nil {
		return nil, errcode.Errorf(errcode.TEEUnavailable, "attesting the run: %v", err)
	}
	if err := r.judgeDebug(be.Name(), ev, warn); err != nil {
		return nil, err
	}
	if err := r.judgeInitData(be.Name(), ev); err != nil {
		return nil, err
	}
	// The simulator's statement says when it was made; hardware evidence
	// carries no time, and the envelope says when the launcher took it.
	issued := time.Now().UTC()
	if be.Name() == tee.KindSim {
		c, err := sim.Verify(ev)
		if err != nil {
			return nil, errcode.Errorf(errcode.Internal, "the simulator's own evidence: %v", err)
		}
		issued = c.Issued
	}
	r.envelope = &tee.Envelope{Version: tee.EnvelopeVersion, Kind: be.Name(), Insecure: be.Insecure(), Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: mm.String(), Profile: r.profile.Name, RuntimeKey: pub, Nonce: nonce, Issued: issued, Event: event, InitData: r.cfg.InitData}
	return r.envelope, nil
}

// makeRuntimeKey makes the run's runtime key, once: a broker's session
// may take it before the evidence is.
func (r *run) makeRuntimeKey() error {
	if r.runtimeKey != nil {
		return nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err == nil {
		r.runtimeKey, err = k.ECDH()
	}
	if err != nil {
		return errcode.Errorf(errcode.Internal, "the runtime key: %v", err)
	}
	r.signingKey = k
	return nil
}

// judgeDebug reads the run's own evidence, straight from its TEE: one
// whose debug policy bit is set lets the host read the run's memory. A
// profile without AllowTEEDebug (production) refuses to run there; the
// others go on with a warning. Evidence the launcher cannot read is
// refused too.
func (r *run) judgeDebug(kind string, ev tee.Evidence, warn func(string)) error {
	var debug bool
	var err error
	switch kind {
	case tee.KindSNP:
		debug, err = snp.ReportDebug(ev.Raw)
	case tee.KindTDX:
		debug, err = tdx.QuoteDebug(ev.Raw)
	default:
		// The simulator protects nothing anyway, and says so.
		return nil
	}
	if err != nil {
		return errcode.Errorf(errcode.TEEUnavailable, "reading the run's own %s evidence: %v", kind, err)
	}
	if !debug {
		return nil
	}
	if !r.profile.AllowTEEDebug {
		return errcode.Errorf(errcode.TEEDebugRefused, "the %s TEE lets its host debug the guest (its debug policy bit is set), and the %s profile does not run there", kind, r.profile.Name)
	}
	r.warn(WarningTEEDebug)
	warn(fmt.Sprintf("the TEE's debug policy bit is set: its host may read this run's memory (backend %s, profile %s)", kind, r.profile.Name))
	return nil
}

// sealingKey is the key of the run's sealed mount: the TEE's for the
// measurement, or the one the manifest's broker releases to the run's
// evidence.
func (r *run) sealingKey(ctx context.Context, m *loader.Manifest, mm loader.Measurement, log hclog.Logger) ([]byte, error) {
	if m.Sealed.Key != loader.SealedKeyBroker {
		be, err := r.backend()
		if err != nil {
			return nil, err
		}
		// The TEE's key is taken only once the run's own evidence is
		// judged: a TEE its host may debug gives none under production.
		if !be.Insecure() {
			if _, err := r.attest(ctx, mm, nil, func(msg string) { log.Warn(msg) }); err != nil {
				return nil, err
			}
		}
		return teeSealingKey(ctx, be, m, mm)
	}
	released, err := r.release(ctx, m, mm, log)
	if err != nil {
		return nil, err
	}
	key := released[broker.SealingKey]
	if len(key) != 32 {
		return nil, errcode.Errorf(errcode.BrokerAnswerInvalid, "the broker's sealing key is %d bytes, not 32", len(key))
	}
	return key, nil
}

// brokerResources are the resources a run asks the manifest's broker for:
// the sealing key of a [sealed] key = "broker", and every [secrets] path.
func brokerResources(m *loader.Manifest) []string {
	var names []string
	if m.Sealed != nil && m.Sealed.Key == loader.SealedKeyBroker {
		names = append(names, broker.SealingKey)
	}
	for _, path := range m.Secrets {
		names = append(names, path)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// release asks the manifest's broker, once per run, for every resource the
// run needs (brokerResources) in one release, its nonce in the run's only
// evidence: the broker answers a nonce once, and releases all or none.
func (r *run) release(ctx context.Context, m *loader.Manifest, mm loader.Measurement, log hclog.Logger) (map[string][]byte, error) {
	if r.released != nil || r.releaseErr != nil {
		return r.released, r.releaseErr
	}
	r.released, r.releaseErr = r.askBroker(ctx, m, mm, log)
	return r.released, r.releaseErr
}

// askBroker fetches every resource the run needs from the manifest's
// broker over its KBS session: one attestation, then each resource in
// turn; a refusal of any ends the run before the workload starts, with
// nothing of what came before kept.
func (r *run) askBroker(ctx context.Context, m *loader.Manifest, mm loader.Measurement, log hclog.Logger) (map[string][]byte, error) {
	names := brokerResources(m)
	if m.Broker == nil || len(names) == 0 {
		return nil, errcode.Errorf(errcode.Internal, "the run asks its broker for nothing")
	}
	out := map[string][]byte{}
	for _, name := range names {
		v, err := r.brokerResource(ctx, m, mm, name, log)
		if err == nil && len(v) == 0 {
			err = errcode.Errorf(errcode.BrokerAnswerInvalid, "the broker's answer has nothing for %s", name)
		}
		if err != nil {
			for _, v := range out {
				clear(v)
			}
			return nil, err
		}
		out[name] = v
	}
	return out, nil
}

// brokerResource is the KBS resource at path from the manifest's broker:
// the run's session attests once, with the run's one evidence (and its
// bundle, for the broker's audit trail), then asks for the resource.
func (r *run) brokerResource(ctx context.Context, m *loader.Manifest, mm loader.Measurement, path string, log hclog.Logger) ([]byte, error) {
	nonce, err := r.challenge(ctx, m)
	if err != nil {
		return nil, err
	}
	env, err := r.attest(ctx, mm, nonce, func(msg string) { log.Warn(msg) })
	if err != nil {
		return nil, err
	}
	if r.kbsSession.Token() == "" {
		var bundle *broker.Bundle
		if r.bundle != nil {
			bundle = broker.BundleOf(r.bundle)
		}
		primary, err := kbs.AmpoulePrimary(env, bundle)
		if err != nil {
			return nil, errcode.Errorf(errcode.Internal, "the evidence: %v", err)
		}
		if _, err := r.kbsSession.Attest(ctx, primary); err != nil {
			return nil, brokerError(err, m.Broker.URL)
		}
	}
	v, err := r.kbsSession.Resource(ctx, path)
	var p *kbs.Problem
	if errors.As(err, &p) && p.Name() == kbs.ProblemPolicyDeny {
		// The run is affirmed and this resource is not its: the policy
		// grants it to no run like this one, or the broker holds nothing
		// there.
		return nil, errcode.Errorf(errcode.SecretRefused, "%s: %s: %v", m.Broker.URL, path, err)
	}
	if err != nil {
		return nil, brokerError(err, m.Broker.URL)
	}
	return v, nil
}

// secrets are the manifest's [secrets], by guest name, as the broker
// released them to the run's evidence; a refused one stops the run before
// the workload starts.
func (r *run) secrets(ctx context.Context, m *loader.Manifest, measurement func() loader.Measurement, log hclog.Logger) (map[string][]byte, error) {
	if len(m.Secrets) == 0 {
		return nil, nil
	}
	released, err := r.release(ctx, m, measurement(), log)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for name, path := range m.Secrets {
		out[name] = released[path]
	}
	log.Info("secrets released", "names", slices.Sorted(maps.Keys(out)), "at", loader.SecretsDir)
	return out, nil
}

// challenge opens the run's KBS session with the manifest's broker, once
// per run, for the run's runtime key: the nonce the run's evidence
// carries is the session's report nonce (which binds the broker's nonce
// and the key), and the tenant's log opens with that evidence.
func (r *run) challenge(ctx context.Context, m *loader.Manifest) ([]byte, error) {
	if !r.challenged {
		r.challenged = true
		if err := r.makeRuntimeKey(); err != nil {
			return nil, err
		}
		kind := r.kind
		if be, err := r.backend(); err == nil {
			kind = be.Name()
		}
		c := &kbs.Client{URL: m.Broker.URL, Key: m.Broker.Key}
		sess, err := c.Auth(ctx, broker.TeeOf(kind), r.runtimeKey)
		if err != nil {
			r.brokerErr = brokerError(err, c.URL)
		} else {
			r.kbsSession, r.brokerNonce = sess, sess.ReportNonce()
		}
	}
	return r.brokerNonce, r.brokerErr
}

// teeSealingKey is the backend's sealing key for the measurement; TDX,
// and SEV-SNP without its device, have none.
func teeSealingKey(ctx context.Context, be tee.Backend, m *loader.Manifest, mm loader.Measurement) ([]byte, error) {
	key, err := be.SealingKey(ctx, mm)
	if errors.Is(err, tdx.ErrNoSealingKey) || errors.Is(err, snp.ErrNoSealingDevice) {
		return nil, errcode.Errorf(errcode.SealingUnavailable, "the manifest has a sealed mount (%s) and backend %s gives no sealing key: %v", m.Sealed.Guest, be.Name(), err).
			WithHint(`set key = "broker" in [sealed], with a [broker], so that the tenant's broker releases the key`)
	}
	if err != nil {
		return nil, errcode.Errorf(errcode.TEEUnavailable, "the sealing key: %v", err)
	}
	return key, nil
}

// attestBound takes the backend's evidence for report data binding the
// measurement m. A backend that records runs in a register (TDX: RTMR3)
// extends it with m first and returns the event; where the platform cannot,
// warn says so and the evidence goes without one: the report data binds the
// measurement either way, and a policy with tdx_require_rtmr refuses it.
func attestBound(ctx context.Context, be tee.Backend, m loader.Measurement, rd [64]byte, warn func(string)) (tee.Evidence, *tee.Event, error) {
	if x, ok := be.(tee.Extender); ok {
		ev, event, err := x.AttestExtended(ctx, m, rd)
		if !errors.Is(err, tdx.ErrNoRTMR) {
			return ev, event, err
		}
		warn(err.Error() + "; the measurement is bound by the report data only")
	}
	ev, err := be.Attest(ctx, rd)
	return ev, nil, err
}

// OpenBackend opens a backend of the given kind: the simulator with its
// key file (simKey, or DefaultSimKey when empty; made on first use), or
// the hardware device, which fails with E3009 on a machine without it.
func OpenBackend(kind, simKey string) (tee.Backend, error) {
	switch kind {
	case tee.KindSNP:
		b, err := snp.Open()
		if err != nil {
			return nil, errcode.Errorf(errcode.TEEUnavailable, "%v", err)
		}
		return b, nil
	case tee.KindTDX:
		b, err := tdx.Open()
		if err != nil {
			return nil, errcode.Errorf(errcode.TEEUnavailable, "%v", err)
		}
		return b, nil
	case tee.KindSim:
	default:
		return nil, errcode.Errorf(errcode.BackendUnknown, "no backend %q", kind)
	}
	path := simKey
	if path == "" {
		var err error
		if path, err = DefaultSimKey(); err != nil {
			return nil, err
		}
	}
	b, err := sim.LoadOrCreate(path)
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "the simulator's key: %v", err)
	}
	return b, nil
}

// DefaultSimKey is the simulator's key file in the user's config
// directory.
func DefaultSimKey() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", errcode.Errorf(errcode.Usage, "no config directory for the simulator's key: %v", err).WithHint("pass --sim-key FILE")
	}
	return filepath.Join(dir, "ampoule", "sim.key"), nil
}
