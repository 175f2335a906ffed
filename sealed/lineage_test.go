package sealed

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Three versions of one bundle and one of another, each with the key the
// TEE would derive for it.
var (
	m1, m2, m3, other = [48]byte{1}, [48]byte{2}, [48]byte{3}, [48]byte{0xee}
	teeKeys           = map[[48]byte][]byte{
		m1: bytes.Repeat([]byte{0x11}, 32), m2: bytes.Repeat([]byte{0x22}, 32),
		m3: bytes.Repeat([]byte{0x33}, 32), other: bytes.Repeat([]byte{0xee}, 32),
	}
)

// teeKeysFor is Keys as a run of self with key = "tee" makes them.
func teeKeysFor(self [48]byte, accept ...[48]byte) *Keys {
	return &Keys{Self: self, Key: bytes.Clone(teeKeys[self]), Accept: accept,
		KeyOf: func(m [48]byte) ([]byte, error) { return bytes.Clone(teeKeys[m]), nil }}
}

// sealV1 seals a tree in the first format, which names no sealer.
func sealV1(t *testing.T, key []byte, entries []Entry) []byte {
	t.Helper()
	header := make([]byte, HeaderSizeV1)
	copy(header, MagicV1)
	if _, err := rand.Read(header[len(MagicV1) : len(MagicV1)+saltSize]); err != nil {
		t.Fatal(err)
	}
	aead, check, err := keys(key, header[len(MagicV1):len(MagicV1)+saltSize])
	if err != nil {
		t.Fatal(err)
	}
	copy(header[len(MagicV1)+saltSize:], check)
	return aead.Seal(header, make([]byte, aead.NonceSize()), encode(entries), header)
}

// TestKeysTakeOverAnAcceptedStore: version 1's store opens for version 2,
// which accepts it, under version 1's own key, and says whose it was.
func TestKeysTakeOverAnAcceptedStore(t *testing.T) {
	store, err := Seal(teeKeys[m1], m1, tree(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if s, named, err := Sealer(store); err != nil || !named || s != m1 {
		t.Fatalf("Sealer = %x, %v, %v", s, named, err)
	}
	o, err := teeKeysFor(m2, m3, m1).Open(store, 1<<20)
	if err != nil || !reflect.DeepEqual(o.Entries, tree()) || o.From == nil || *o.From != m1 {
		t.Fatalf("v2 accepting v1: %v, from %v", err, o.From)
	}
	o, err = teeKeysFor(m1).Open(store, 1<<20)
	if err != nil || o.From != nil {
		t.Fatalf("v1's own store: %v, from %v", err, o.From)
	}
}

// TestKeysRefuseAStoreNotAccepted: a version that accepts nothing, one
// that accepts another measurement, and another bundle are all refused
// with ErrForeign, whose detail names the store's measurement and the
// run's; so is a store naming an accepted measurement that its key does
// not open (another machine's).
func TestKeysRefuseAStoreNotAccepted(t *testing.T) {
	store, _ := Seal(teeKeys[m1], m1, tree(), 1<<20)
	for name, k := range map[string]*Keys{
		"v3 accepting nothing":       teeKeysFor(m3),
		"v2 accepting v3 only":       teeKeysFor(m2, m3),
		"another bundle":             teeKeysFor(other, m2),
		"v2 on another machine":      {Self: m2, Key: teeKeys[m2], Accept: [][48]byte{m1}, KeyOf: func([48]byte) ([]byte, error) { return bytes.Repeat([]byte{9}, 32), nil }},
		"same key, sealer not named": {Self: m2, Key: teeKeys[m1]},
	} {
		_, err := k.Open(store, 1<<20)
		if !errors.Is(err, ErrForeign) {
			t.Errorf("%s: %v, want ErrForeign", name, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, hex.EncodeToString(m1[:])) || !strings.Contains(msg, hex.EncodeToString(k.Self[:])) {
			t.Errorf("%s: %q does not name both measurements", name, msg)
		}
	}
}

// TestKeysSharedKey: with one key for every version (the broker's, by
// bundle), the sealer the store names still decides: an accepted one
// opens, any other is foreign, and a store whose named sealer was changed
// does not authenticate.
func TestKeysSharedKey(t *testing.T) {
	key := bytes.Repeat([]byte{0x5e}, 32)
	store, _ := Seal(key, m1, tree(), 1<<20)
	o, err := (&Keys{Self: m2, Key: key, Accept: [][48]byte{m1}}).Open(store, 1<<20)
	if err != nil || o.From == nil || *o.From != m1 {
		t.Fatalf("v2 accepting v1 under the bundle's key: %v", err)
	}
	if _, err := (&Keys{Self: m3, Key: key}).Open(store, 1<<20); !errors.Is(err, ErrForeign) {
		t.Fatalf("v3 accepting nothing under the bundle's key: %v", err)
	}
	// The host rewrites the sealer to one v3 accepts.
	forged := bytes.Clone(store)
	copy(forged[len(Magic)+saltSize+checkSize:], m2[:])
	if _, err := (&Keys{Self: m3, Key: key, Accept: [][48]byte{m2}}).Open(forged, 1<<20); !errors.Is(err, ErrTampered) {
		t.Fatalf("a store with its sealer rewritten: %v, want ErrTampered", err)
	}
}

// TestKeysFirstFormat: a store from before stores named their sealer opens
// under the run's own key, or an accepted measurement's, and no other.
func TestKeysFirstFormat(t *testing.T) {
	store := sealV1(t, teeKeys[m1], tree())
	if _, named, err := Sealer(store); err != nil || named {
		t.Fatalf("Sealer of a first-format store: %v, %v", named, err)
	}
	if o, err := teeKeysFor(m1).Open(store, 1<<20); err != nil || o.From != nil || !reflect.DeepEqual(o.Entries, tree()) {
		t.Fatalf("its own run: %v", err)
	}
	if o, err := teeKeysFor(m2, m1).Open(store, 1<<20); err != nil || o.From == nil || *o.From != m1 {
		t.Fatalf("v2 accepting v1: %v", err)
	}
	if _, err := teeKeysFor(m3, m2).Open(store, 1<<20); !errors.Is(err, ErrForeign) {
		t.Fatalf("v3 accepting v2 only: %v", err)
	}
}

// TestKeysRefuseTheirOwnMeasurement and a key that cannot be had.
func TestKeysRefuseTheirOwnMeasurement(t *testing.T) {
	store, _ := Seal(teeKeys[m1], m1, tree(), 1<<20)
	if _, err := teeKeysFor(m1, m1).Open(store, 1<<20); err == nil || errors.Is(err, ErrForeign) {
		t.Fatalf("accepting its own measurement: %v", err)
	}
	failing := teeKeysFor(m2, m1)
	failing.KeyOf = func([48]byte) ([]byte, error) { return nil, errors.New("no device") }
	if _, err := failing.Open(store, 1<<20); err == nil || errors.Is(err, ErrForeign) || !strings.Contains(err.Error(), "no device") {
		t.Fatalf("a key that cannot be had: %v", err)
	}
}

// TestMountTakesOverAndSealsAsItsOwn: OpenMount under version 2 unpacks
// version 1's store; SealBack seals it as version 2's, which version 1 then
// cannot open.
func TestMountTakesOverAndSealsAsItsOwn(t *testing.T) {
	file := filepath.Join(t.TempDir(), "notes.sealed")
	if err := Save(file, teeKeys[m1], m1, tree(), 1<<20); err != nil {
		t.Fatal(err)
	}
	m, err := OpenMount(file, teeKeysFor(m2, m1), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if m.From == nil || *m.From != m1 || m.Entries != len(tree()) {
		t.Fatalf("mount from %v, %d entries", m.From, m.Entries)
	}
	if _, err := m.SealBack(); err != nil {
		t.Fatal(err)
	}
	o, found, err := teeKeysFor(m2).Load(file, 1<<20)
	if err != nil || !found || o.From != nil || len(o.Entries) != len(tree()) {
		t.Fatalf("v2's own store after the take-over: %v, %v, from %v", err, found, o.From)
	}
	if _, _, err := teeKeysFor(m1).Load(file, 1<<20); !errors.Is(err, ErrForeign) {
		t.Fatalf("v1 opened the store v2 sealed: %v", err)
	}
}
