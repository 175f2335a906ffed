package ampoule

import (
	"context"
	"encoding/hex"

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
// is what accept_from is checked against. Under key = "tee" an accepted
// version's key is the one the TEE derives for it, which the runtime can
// ask for but no one vouches that the new version may have: a profile
// that does not trust its host with the plaintext (SealedPlain) refuses
// such a manifest (E3018), whatever store it is given.
func (r *run) sealedKeys(ctx context.Context, m *loader.Manifest, mm loader.Measurement, log hclog.Logger) (*sealed.Keys, error) {
	accept := m.Sealed.AcceptFrom
	if len(accept) > 0 && m.Sealed.Key != loader.SealedKeyBroker && !r.profile.SealedPlain {
		return nil, errcode.Errorf(errcode.SealedAcceptRefused, "%s's [sealed] accept_from names %d earlier measurements, and under key = %q the %s profile opens no store but the run's own", m.Name, len(accept), m.Sealed.Key, r.profile.Name)
	}
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
	for _, a := range accept {
		k.Accept = append(k.Accept, a)
	}
	if m.Sealed.Key != loader.SealedKeyBroker && len(accept) > 0 {
		be, err := r.backend()
		if err != nil {
			return nil, err
		}
		k.KeyOf = func(a [48]byte) ([]byte, error) { return teeSealingKey(ctx, be, m, a) }
	}
	return k, nil
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
		info.Entries = n
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
