package ampoule

import (
	"context"
	"encoding/hex"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/sealed"
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

// hexOf is a measurement in hex, for log lines.
func hexOf(m [48]byte) string { return hex.EncodeToString(m[:]) }
