package ampoule

import (
	"encoding/hex"
	"slices"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sealed"
)

// HandOn is a signed hand-on: the consent, signed with the tenant's
// hand-on key, that the version measured To takes over the sealed stores
// of the version measured From.
type HandOn struct {
	Data     []byte
	From, To loader.Measurement
}

// SignHandOn signs the hand-on of the stores of measurement from (96 hex
// digits, as launch measure prints it) to the bundle at path bundle measured
// under profile, with the hand-on key in keyFile. It refuses, each as a
// usage error with a hint, a from that is no measurement or is the
// bundle's own, a key file that is not one, and a bundle whose [sealed]
// accept_from does not name from, since no run of it would take that store.
func SignHandOn(bundle, profile, keyFile, from string) (HandOn, error) {
	var fromM [48]byte
	if b, err := hex.DecodeString(strings.TrimSpace(from)); err != nil || len(b) != len(fromM) {
		return HandOn{}, errcode.Errorf(errcode.Usage, "--from %.100q is not a measurement", from).WithHint("pass what launch measure --profile P prints for the earlier version: 96 hex digits")
	} else {
		copy(fromM[:], b)
	}
	if _, err := profiles.Get(profile); err != nil {
		return HandOn{}, err
	}
	data, err := regfile.ReadBounded(keyFile, 4096)
	if err != nil {
		return HandOn{}, errcode.Errorf(errcode.Usage, "--key: %v", err).WithHint("pass the file launch sealed keygen made")
	}
	key, err := sealed.ParseHandOnKey(data)
	clear(data)
	if err != nil {
		return HandOn{}, errcode.Errorf(errcode.Usage, "--key %s: %v", keyFile, err).WithHint("pass the file launch sealed keygen made")
	}
	b, err := loader.Open(bundle)
	if err != nil {
		return HandOn{}, err
	}
	to := loader.Measure(b, profile)
	if to == fromM {
		return HandOn{}, errcode.Errorf(errcode.Usage, "--from is %s's own measurement under %s", bundle, profile).WithHint("--from names the earlier version's measurement")
	}
	if b.Manifest.Sealed == nil || !slices.Contains(b.Manifest.Sealed.AcceptFrom, loader.Measurement(fromM)) {
		return HandOn{}, (errcode.Errorf(errcode.Usage, "%s's [sealed] accept_from does not name %x, so no run of it would take that store", bundle, fromM[:]).
			WithHint("add the measurement to accept_from in its ampoule.toml first (it is measured), then sign"))
	}
	handOn := sealed.SignHandOn(key, fromM, to)
	clear(key)
	return HandOn{Data: handOn, From: loader.Measurement(fromM), To: to}, nil
}

// ReadHandOn reads the hand-on file path for Config.SealedHandOn, as
// --hand-on names it: a regular file, read to one byte past
// sealed.MaxHandOn (Run's parsing of the hand-on refuses more); anything
// else is a usage error about the host's own input.
func ReadHandOn(path string) ([]byte, error) {
	data, err := regfile.ReadBounded(path, sealed.MaxHandOn)
	if err != nil {
		return nil, errcode.Errorf(errcode.Usage, "--hand-on: %v", err).WithHint("pass the file launch sealed sign wrote").Host()
	}
	return data, nil
}
