package ampoule

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sealed"
	"github.com/ampoule-run/ampoule/tee"
)

// sealedKeys are the keys of the run's sealed mount: its own (sealingKey)
// and, for the measurements its manifest's accept_from names, theirs.
// Under key = "broker" the broker's key is the bundle's, the same for
// every version its policy puts in the bundle, so the store's named sealer
// is what accept_from is checked against, and the policy is the consent.
// Under key = "tee" an accepted version's key is the one the TEE derives
// for it, which the runtime can take, but a manifest is no consent (anyone
// can write one naming an old measurement): a profile that does not trust
// its host with the plaintext (SealedPlain) gives the run such a store
// only with a hand-on (Config.SealedHandOn) signed by the hand_on_key the
// store records (E3018 without one, E3020 for one that does not verify).
func (r *run) sealedKeys(ctx context.Context, m *loader.Manifest, mm loader.Measurement, log hclog.Logger) (*sealed.Keys, error) {
	accept := m.Sealed.AcceptFrom
	for _, a := range accept {
		// A manifest cannot name its own measurement (the measurement
		// covers the list), but the rule is the store's, so it is held.
		if a == mm {
			return nil, errcode.Errorf(errcode.ManifestInvalid, "[sealed] accept_from names the run's own measurement %s", mm)
		}
	}
	key, err := r.sealingKey(ctx, m, mm, log)
	if err != nil {
		return nil, err
	}
	k := &sealed.Keys{Self: mm, Key: key}
	copy(k.HandOnKey[:], m.Sealed.HandOnKey)
	for _, a := range accept {
		k.Accept = append(k.Accept, a)
	}
	if m.Sealed.Key != loader.SealedKeyBroker && len(accept) > 0 {
		be, err := r.backend()
		if err != nil {
			return nil, err
		}
		k.KeyOf = func(a [48]byte) ([]byte, error) { return teeSealingKey(ctx, be, m, a) }
		if !r.profile.SealedPlain || r.cfg.SealedHandOn != nil {
			k.Vouch = func(from [48]byte, handOn [32]byte) error { return r.vouch(from, handOn, mm) }
		}
	}
	return k, nil
}

// vouch checks the run's hand-on of from's store, which records handOn,
// to the run's measurement mm.
func (r *run) vouch(from [48]byte, handOn [32]byte, mm loader.Measurement) error {
	if r.cfg.SealedHandOn == nil {
		return errcode.Errorf(errcode.SealedAcceptRefused, "the store was sealed by %x, which [sealed] accept_from names, under key = \"tee\", and the %s profile takes it over only with a hand-on signed by the hand_on_key it records; none was given", from[:], r.profile.Name)
	}
	h, err := sealed.ParseHandOn(r.cfg.SealedHandOn)
	if err != nil {
		return errcode.Errorf(errcode.SealedHandOnInvalid, "--hand-on: %v", err).
			WithHint("pass the file launch sealed sign wrote").Host()
	}
	if err := h.Verify(handOn, from, mm); err != nil {
		return errcode.Errorf(errcode.SealedHandOnInvalid, "%v", err)
	}
	return nil
}

// SealedInfo is what ExportSealed or ImportSealed did.
type SealedInfo struct {
	// Store is the sealed store's file; Entries how many entries it held
	// or now holds.
	Store   string
	Entries int
	// Measurement is the bundle's under the profile, the one the store is
	// sealed as; From, when the store was an earlier version's that the
	// manifest accepts, is that version's.
	Measurement loader.Measurement
	From        *loader.Measurement
	// Dir is the plaintext directory written (export) or read (import);
	// Imported says which.
	Dir      string
	Imported bool
}

// WriteText writes what was moved for a person: the entries, the store
// and the directory, and an export's earlier version when it had one.
func (i SealedInfo) WriteText(w io.Writer) {
	if i.Imported {
		fmt.Fprintf(w, "sealed %d entries of %s into %s, for measurement %s\n", i.Entries, i.Dir, i.Store, i.Measurement)
		return
	}
	fmt.Fprintf(w, "exported %d entries of %s into %s\n", i.Entries, i.Store, i.Dir)
	if i.From != nil {
		fmt.Fprintf(w, "the store was sealed by %s, which the manifest accepts\n", i.From)
	}
}

// ExportSealed writes the plaintext files of the sealed store of the
// bundle at path (cfg.SealedStore, or its default) into dir, a new or
// empty directory, opening it with the key a run of the bundle under
// cfg.Profile would have (an earlier version's store its manifest accepts
// opens too). The store is not changed. Only a profile with SealedPlain
// (debug) allows it: elsewhere it is refused, E3019, before anything is
// read. Config's Profile, Backend, SimKey, TEE, Platform, SealedStore and
// Warnings are used.
func ExportSealed(ctx context.Context, path string, cfg Config, dir string) (SealedInfo, error) {
	return sealedPlain(ctx, path, cfg, func(file string, k *sealed.Keys, max int64, info *SealedInfo) error {
		info.Dir = dir
		o, err := sealed.Export(file, k, max, dir)
		if err != nil {
			return err
		}
		info.Entries = len(o.Entries)
		if o.From != nil {
			from := loader.Measurement(*o.From)
			info.From = &from
		}
		return nil
	})
}

// ImportSealed seals the files under dir into a new sealed store for the
// bundle at path (cfg.SealedStore, or its default), as a run of it under
// cfg.Profile would seal them; an existing store is never replaced
// (E1031). Only a profile with SealedPlain (debug) allows it: elsewhere
// it is refused, E3019, before anything is read.
func ImportSealed(ctx context.Context, path string, cfg Config, dir string) (SealedInfo, error) {
	return sealedPlain(ctx, path, cfg, func(file string, k *sealed.Keys, max int64, info *SealedInfo) error {
		n, err := sealed.Import(file, k, max, dir)
		info.Entries, info.Dir, info.Imported = n, dir, true
		return err
	})
}

// sealedPlain checks the profile, reads the bundle, takes its sealing keys
// as a run would and calls do with them.
func sealedPlain(ctx context.Context, path string, cfg Config, do func(file string, k *sealed.Keys, max int64, info *SealedInfo) error) (SealedInfo, error) {
	var info SealedInfo
	p, err := profiles.Get(cfg.Profile)
	if err != nil {
		return info, err
	}
	if !p.SealedPlain {
		return info, errcode.Errorf(errcode.SealedPlainRefused, "the %s profile keeps a sealed store's plaintext from its host: launch sealed export and import are for the debug profile's stores", p.Name).Host()
	}
	r := newRun(p, cfg)
	defer r.close()
	b, err := r.open(path)
	if err != nil {
		return info, err
	}
	m := b.Manifest
	if m.Sealed == nil {
		return info, errcode.Errorf(errcode.Usage, "%s has no [sealed] mount, so it has no sealed store", b.Source).Host()
	}
	if err := r.selectBackend(); err != nil {
		return info, err
	}
	if r.kind == tee.KindSim {
		r.warn(WarningSim)
	}
	info.Measurement = loader.Measure(b, p.Name)
	log := hclog.New(&hclog.LoggerOptions{Output: cfg.warnings(), Level: hclog.Warn})
	k, err := r.sealedKeys(ctx, m, info.Measurement, log)
	if err != nil {
		return info, err
	}
	defer clear(k.Key)
	if info.Store = cfg.SealedStore; info.Store == "" {
		if info.Store, err = DefaultSealedFile(m.Name, p.Name); err != nil {
			return info, err
		}
	}
	return info, do(info.Store, k, m.Sealed.MaxBytes, &info)
}

// hexOf is a measurement in hex, for log lines.
func hexOf(m [48]byte) string { return hex.EncodeToString(m[:]) }
