package sealed

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Keys are what a run opens its store with and seals it back under: its
// own measurement and key, and the earlier measurements whose stores its
// manifest accepts ([sealed] accept_from).
type Keys struct {
	// Self is the run's measurement, which every store it seals names;
	// Key is its sealing key, which those stores are sealed under.
	Self [48]byte
	Key  []byte
	// Accept are the measurements whose stores the run takes over.
	Accept [][48]byte
	// KeyOf gives the sealing key of an accepted measurement, the one its
	// own runs sealed under (the TEE's key for it). Nil means that Key is
	// also theirs (a broker's key for every version of a bundle).
	KeyOf func(m [48]byte) ([]byte, error)
	// HandOnKey is what every store the run seals records as its hand-on
	// key: the manifest's hand_on_key, or zeros for none.
	HandOnKey [32]byte
	// Vouch, when set, is asked before the run is given a store that an
	// accepted measurement sealed, with that measurement and the hand-on
	// key its store names (authenticated by then): an error refuses the
	// store. Nil: that the manifest accepts it is enough (a profile that
	// trusts its host, or a broker's key for a bundle, whose policy is the
	// consent).
	Vouch func(from [48]byte, handOn [32]byte) error
}

// Opened is what a store held and whose it was.
type Opened struct {
	Entries []Entry
	// From is the measurement that sealed the store, when it is one of
	// Keys.Accept; nil when it was the run's own (or a first-format store
	// opened under Key, which only the run's own key does).
	From *[48]byte
}

// Open opens a store for a run: a store naming Self opens under Key; one
// naming an accepted measurement opens under that measurement's key, and
// is given to the run only if Vouch, when set, agrees; any other is
// ErrForeign, with both measurements in its detail, as is one a key does
// not open. A store of the first format, which names no sealer, opens
// under Key or, failing that, under an accepted measurement's key.
func (k *Keys) Open(store []byte, max int64) (Opened, error) {
	if slices.Contains(k.Accept, k.Self) {
		return Opened{}, errors.New("a run cannot accept its own measurement's store as another's")
	}
	sealer, named, err := Sealer(store)
	if err != nil {
		return Opened{}, err
	}
	if !named {
		entries, err := Open(k.Key, store, max)
		if !errors.Is(err, ErrForeign) || k.KeyOf == nil {
			return Opened{Entries: entries}, k.foreign(err, nil)
		}
		for _, m := range k.Accept {
			entries, err := k.openAs(m, store, max)
			if !errors.Is(err, ErrForeign) {
				return k.vouched(Opened{Entries: entries, From: &m}, err, store)
			}
		}
		return Opened{}, k.foreign(ErrForeign, nil)
	}
	if sealer == k.Self {
		entries, err := Open(k.Key, store, max)
		return Opened{Entries: entries}, k.foreign(err, &sealer)
	}
	if !slices.Contains(k.Accept, sealer) {
		return Opened{}, k.foreign(ErrForeign, &sealer)
	}
	entries, err := k.openAs(sealer, store, max)
	return k.vouched(Opened{Entries: entries, From: &sealer}, k.foreign(err, &sealer), store)
}

// vouched gives o, an accepted measurement's store that opened (err nil),
// to the run only if Vouch, when set, agrees.
func (k *Keys) vouched(o Opened, err error, store []byte) (Opened, error) {
	if err != nil || k.Vouch == nil {
		return o, err
	}
	handOn, err := HandOnKey(store)
	if err == nil {
		err = k.Vouch(*o.From, handOn)
	}
	if err != nil {
		return Opened{}, err
	}
	return o, nil
}

// Save seals the tree into file as the run's own: under Key, naming Self
// and HandOnKey, as Save does.
func (k *Keys) Save(file string, entries []Entry, max int64) error {
	store, err := SealHandingOn(k.Key, k.Self, k.HandOnKey, entries, max)
	if err != nil {
		return err
	}
	return saveStore(file, store)
}

// openAs opens the store with accepted measurement m's key.
func (k *Keys) openAs(m [48]byte, store []byte, max int64) ([]Entry, error) {
	if k.KeyOf == nil {
		return Open(k.Key, store, max)
	}
	key, err := k.KeyOf(m)
	if err != nil {
		return nil, fmt.Errorf("the sealing key of %s: %w", hex.EncodeToString(m[:]), err)
	}
	defer clear(key)
	return Open(key, store, max)
}

// foreign gives ErrForeign the measurements involved: sealer (nil when the
// store names none), this run's and the ones it accepts.
func (k *Keys) foreign(err error, sealer *[48]byte) error {
	if !errors.Is(err, ErrForeign) {
		return err
	}
	var b strings.Builder
	if sealer != nil {
		fmt.Fprintf(&b, "sealed by measurement %x", sealer[:])
	} else {
		b.WriteString("sealed before stores named their measurement")
	}
	fmt.Fprintf(&b, "; this run is %x", k.Self[:])
	if len(k.Accept) == 0 {
		b.WriteString(" and accepts no other measurement's store")
	} else {
		b.WriteString(" and accepts the stores of")
		for _, m := range k.Accept {
			fmt.Fprintf(&b, " %x", m[:])
		}
	}
	if sealer != nil && (*sealer == k.Self || slices.Contains(k.Accept, *sealer)) {
		b.WriteString(", but its key does not open it (another machine, or another broker)")
	}
	return fmt.Errorf("%w: %s", ErrForeign, b.String())
}
