package sealed

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"strings"
	"testing"
)

var tenantKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x7e}, 32))

func tenantPub() (k [32]byte) { copy(k[:], tenantKey.Public().(ed25519.PublicKey)); return }

// TestHandOnRoundTrip: a signed hand-on parses back and verifies for its
// own two measurements under its key, and for nothing else.
func TestHandOnRoundTrip(t *testing.T) {
	file := SignHandOn(tenantKey, m1, m2)
	h, err := ParseHandOn(file)
	if err != nil || h.From != m1 || h.To != m2 {
		t.Fatalf("parse: %v, %+v", err, h)
	}
	if err := h.Verify(tenantPub(), m1, m2); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if h2, err := ParseHandOn(bytes.TrimSuffix(file, []byte("\n"))); err != nil || h2.From != m1 {
		t.Errorf("without its newline: %v", err)
	}
	if h2, err := ParseHandOn(bytes.ToUpper(file[len(handOnPrefix):])); err == nil {
		t.Errorf("no prefix parsed: %+v", h2)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	var otherPub [32]byte
	copy(otherPub[:], other.Public().(ed25519.PublicKey))
	forged, _ := ParseHandOn(SignHandOn(other, m1, m2))
	flipped := h
	flipped.Signature = bytes.Clone(h.Signature)
	flipped.Signature[7] ^= 1
	for name, tc := range map[string]struct {
		h        HandOn
		pub      [32]byte
		from, to [48]byte
		want     string
	}{
		"no hand_on_key":       {h, [32]byte{}, m1, m2, "names no hand_on_key"},
		"another store":        {h, tenantPub(), m3, m2, "this store is"},
		"another run":          {h, tenantPub(), m1, m3, "this run is"},
		"another key's":        {forged, tenantPub(), m1, m2, "not signed by the hand_on_key"},
		"under the other key":  {h, otherPub, m1, m2, "not signed by the hand_on_key"},
		"a flipped signature":  {flipped, tenantPub(), m1, m2, "not signed by the hand_on_key"},
		"its key, other store": {forged, otherPub, m3, m2, "this store is"},
	} {
		err := tc.h.Verify(tc.pub, tc.from, tc.to)
		if !errors.Is(err, ErrHandOnRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrHandOnRefused naming %q", name, err, tc.want)
		}
	}
}

// TestParseHandOnRefuses what is not exactly a hand-on.
func TestParseHandOnRefuses(t *testing.T) {
	good := string(SignHandOn(tenantKey, m1, m2))
	fields := strings.Fields(good)
	for name, data := range map[string]string{
		"empty":           "",
		"other version":   strings.Replace(good, " v1 ", " v2 ", 1),
		"short from":      strings.Replace(good, fields[2], fields[2][2:], 1),
		"not hex":         strings.Replace(good, fields[3], "zz"+fields[3][2:], 1),
		"short signature": strings.Replace(good, fields[4], fields[4][2:], 1),
		"extra field":     strings.TrimSuffix(good, "\n") + " x\n",
		"two lines":       good + good,
		"double space":    strings.Replace(good, " ", "  ", 3),
		"huge":            good + strings.Repeat(" ", MaxHandOn),
	} {
		if h, err := ParseHandOn([]byte(data)); !errors.Is(err, ErrHandOnMalformed) {
			t.Errorf("%s: %v, %+v", name, err, h)
		}
	}
}

// TestKeysVouch: Vouch is asked, with the hand-on key the store records,
// before an accepted measurement's store is given to the run, and its
// refusal refuses the store; a run's own store and a first-format store
// (which records no key) are asked about as they must be.
func TestKeysVouch(t *testing.T) {
	store, err := SealHandingOn(teeKeys[m1], m1, tenantPub(), tree(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := HandOnKey(store); err != nil || k != tenantPub() {
		t.Fatalf("HandOnKey = %x, %v", k, err)
	}
	var asked []string
	refuse := errors.New("no hand-on")
	keys := teeKeysFor(m2, m1)
	keys.Vouch = func(from [48]byte, handOn [32]byte) error {
		asked = append(asked, string(from[:1])+string(handOn[:1]))
		if handOn != tenantPub() {
			return refuse
		}
		return nil
	}
	if o, err := keys.Open(store, 1<<20); err != nil || o.From == nil || len(o.Entries) != len(tree()) {
		t.Fatalf("a vouched store: %v", err)
	}
	v1 := sealV1(t, teeKeys[m1], tree())
	if o, err := keys.Open(v1, 1<<20); !errors.Is(err, refuse) || o.Entries != nil {
		t.Fatalf("a first-format store, which names no key: %v, %d entries", err, len(o.Entries))
	}
	own, _ := Seal(teeKeys[m2], m2, tree(), 1<<20)
	if _, err := keys.Open(own, 1<<20); err != nil {
		t.Fatalf("the run's own store: %v", err)
	}
	if len(asked) != 2 || asked[0] != string([]byte{1, tenantPub()[0]}) || asked[1] != string([]byte{1, 0}) {
		t.Errorf("Vouch was asked %q", asked)
	}
	// The run's own seals record its hand-on key.
	keys.HandOnKey = [32]byte{9}
	file := t.TempDir() + "/s.sealed"
	if err := keys.Save(file, tree(), 1<<20); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	if k, err := HandOnKey(data); err != nil || k != keys.HandOnKey {
		t.Errorf("the run's store records hand-on key %x, %v", k, err)
	}
}

// FuzzParseHandOn: any bytes parse to a hand-on that prints back as the
// same line, or fail with ErrHandOnMalformed.
func FuzzParseHandOn(f *testing.F) {
	f.Add(SignHandOn(tenantKey, m1, m2))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHandOn(data)
		if err != nil {
			if !errors.Is(err, ErrHandOnMalformed) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if len(h.Signature) != ed25519.SignatureSize {
			t.Fatalf("a signature of %d bytes", len(h.Signature))
		}
		again, err := ParseHandOn([]byte(strings.ToLower(string(data))))
		if err != nil || again.From != h.From || again.To != h.To || !bytes.Equal(again.Signature, h.Signature) {
			t.Fatalf("the lower-case form parses otherwise: %v", err)
		}
	})
}

// TestHandOnKeyFile: a new key's file parses back to a key whose public
// half is the one given for the manifest; anything else is refused.
func TestHandOnKeyFile(t *testing.T) {
	file, pub, err := NewHandOnKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseHandOnKey(file)
	if err != nil || !bytes.Equal(key.Public().(ed25519.PublicKey), pub[:]) {
		t.Fatalf("parse: %v", err)
	}
	h, _ := ParseHandOn(SignHandOn(key, m1, m2))
	if err := h.Verify(pub, m1, m2); err != nil {
		t.Errorf("a hand-on signed with the file's key: %v", err)
	}
	for name, data := range map[string]string{
		"empty":     "",
		"short":     string(file[:len(file)-3]),
		"not hex":   strings.Replace(string(file), string(file[len(handOnKeyPrefix):len(handOnKeyPrefix)+2]), "zz", 1),
		"no prefix": string(file[len(handOnKeyPrefix):]),
		"two lines": string(file) + string(file),
	} {
		if _, err := ParseHandOnKey([]byte(data)); !errors.Is(err, ErrHandOnKeyMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzParseHandOnKey: any bytes parse to a key or fail with
// ErrHandOnKeyMalformed.
func FuzzParseHandOnKey(f *testing.F) {
	f.Add([]byte(handOnKeyPrefix + strings.Repeat("ab", 32) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseHandOnKey(data)
		if err != nil {
			if !errors.Is(err, ErrHandOnKeyMalformed) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if len(key) != ed25519.PrivateKeySize {
			t.Fatalf("a key of %d bytes", len(key))
		}
	})
}
