package sealed

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// A hand-on is the tenant's consent that a later version may take over the
// stores an earlier version sealed under a key only that version's
// measurement derives (the TEE's): an Ed25519 signature, by the key the
// earlier version's manifest names in hand_on_key (which its stores
// record), over
//
//	"ampoule/sealed/hand-on/v1\x00" ‖ from (48) ‖ to (48)
//
// from and to being the two measurements. Its file is one line:
//
//	ampoule-sealed-hand-on v1 FROM TO SIGNATURE
//
// in hex (96, 96 and 128 digits), with a final newline or without.
const (
	handOnPrefix = "ampoule-sealed-hand-on v1 "
	handOnDomain = "ampoule/sealed/hand-on/v1\x00"
	// MaxHandOn bounds a hand-on file.
	MaxHandOn = 512
)

// Errors of hand-ons, each wrapped with detail.
var (
	// ErrHandOnMalformed: the bytes are not a hand-on.
	ErrHandOnMalformed = errors.New("not a sealed-store hand-on")
	// ErrHandOnRefused: a well-formed hand-on that does not hand this
	// store on to this run.
	ErrHandOnRefused = errors.New("the hand-on does not hand this store on to this run")
)

// HandOn is a parsed hand-on: from's stores go to to, signed.
type HandOn struct {
	From, To  [48]byte
	Signature []byte
}

func handOnMessage(from, to [48]byte) []byte {
	return append(append([]byte(handOnDomain), from[:]...), to[:]...)
}

// SignHandOn signs the hand-on of from's stores to to with key, the private
// half of the hand_on_key from's manifest names, and returns its file.
func SignHandOn(key ed25519.PrivateKey, from, to [48]byte) []byte {
	sig := ed25519.Sign(key, handOnMessage(from, to))
	return fmt.Appendf(nil, "%s%x %x %x\n", handOnPrefix, from[:], to[:], sig)
}

// ParseHandOn reads a hand-on file strictly: its one line, each field of
// exactly its length in lower- or upper-case hex. Every error wraps
// ErrHandOnMalformed.
func ParseHandOn(data []byte) (HandOn, error) {
	var h HandOn
	if len(data) > MaxHandOn {
		return h, fmt.Errorf("%w: %d bytes, more than a hand-on's %d", ErrHandOnMalformed, len(data), MaxHandOn)
	}
	line, _ := bytes.CutSuffix(data, []byte("\n"))
	rest, found := strings.CutPrefix(string(line), handOnPrefix)
	if !found {
		return h, fmt.Errorf("%w: it does not begin %q", ErrHandOnMalformed, strings.TrimSpace(handOnPrefix))
	}
	fields := strings.Split(rest, " ")
	if len(fields) != 3 {
		return h, fmt.Errorf("%w: %d fields after the version, not from, to and the signature", ErrHandOnMalformed, len(fields))
	}
	for i, dst := range [][]byte{h.From[:], h.To[:]} {
		b, err := hex.DecodeString(fields[i])
		if err != nil || len(b) != len(dst) {
			return h, fmt.Errorf("%w: %s is not a measurement (96 hex digits)", ErrHandOnMalformed, []string{"from", "to"}[i])
		}
		copy(dst, b)
	}
	sig, err := hex.DecodeString(fields[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return h, fmt.Errorf("%w: the signature is not %d hex digits", ErrHandOnMalformed, 2*ed25519.SignatureSize)
	}
	h.Signature = sig
	return h, nil
}

// Verify checks that h hands from's stores on to to, signed by pub (the
// hand-on key from's store names). Every error wraps ErrHandOnRefused.
func (h HandOn) Verify(pub [32]byte, from, to [48]byte) error {
	switch {
	case pub == [32]byte{}:
		return fmt.Errorf("%w: the store of %x names no hand_on_key, so no hand-on takes it", ErrHandOnRefused, from[:])
	case h.From != from:
		return fmt.Errorf("%w: it hands on the stores of %x, and this store is %x's", ErrHandOnRefused, h.From[:], from[:])
	case h.To != to:
		return fmt.Errorf("%w: it hands the store on to %x, and this run is %x", ErrHandOnRefused, h.To[:], to[:])
	case !ed25519.Verify(pub[:], handOnMessage(from, to), h.Signature):
		return fmt.Errorf("%w: it is not signed by the hand_on_key %x the store names", ErrHandOnRefused, pub[:])
	}
	return nil
}

// A hand-on key file holds the private half of a manifest's hand_on_key:
// one line, "ampoule-hand-on-key v1 " and the Ed25519 seed in hex (64
// digits), with a final newline or without.
const handOnKeyPrefix = "ampoule-hand-on-key v1 "

// ErrHandOnKeyMalformed wraps every reason a hand-on key file is refused.
var ErrHandOnKeyMalformed = errors.New("not a hand-on key file")

// NewHandOnKey makes a hand-on key: its file, and the public key a
// manifest names in hand_on_key.
func NewHandOnKey() (file []byte, pub [32]byte, err error) {
	var seed [ed25519.SeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, pub, err
	}
	key := ed25519.NewKeyFromSeed(seed[:])
	copy(pub[:], key.Public().(ed25519.PublicKey))
	file = fmt.Appendf(nil, "%s%x\n", handOnKeyPrefix, seed[:])
	clear(seed[:])
	return file, pub, nil
}

// ParseHandOnKey reads a hand-on key file strictly. Every error wraps
// ErrHandOnKeyMalformed and shows nothing of the file.
func ParseHandOnKey(data []byte) (ed25519.PrivateKey, error) {
	line, _ := bytes.CutSuffix(data, []byte("\n"))
	rest, ok := bytes.CutPrefix(line, []byte(handOnKeyPrefix))
	if !ok || len(rest) != 2*ed25519.SeedSize {
		return nil, fmt.Errorf("%w: it is not one line %q and 64 hex digits", ErrHandOnKeyMalformed, strings.TrimSpace(handOnKeyPrefix))
	}
	var seed [ed25519.SeedSize]byte
	if _, err := hex.Decode(seed[:], rest); err != nil {
		return nil, fmt.Errorf("%w: the seed is not hex", ErrHandOnKeyMalformed)
	}
	defer clear(seed[:])
	return ed25519.NewKeyFromSeed(seed[:]), nil
}
