// Package sealed keeps a workload's sealed mount on the host's disk as one
// encrypted file, the store, which opens only under the key it was sealed
// with: a sealing key the TEE derives for the run's measurement.
//
// A store is a 144-byte header and one AES-256-GCM ciphertext:
//
//	magic "AMPOULE-SEALED\x00\x02" (16) ‖ salt (32) ‖ check (16) ‖ sealer (48) ‖ hand-on key (32) ‖ GCM(tree)
//
// where sealer is the measurement of the run that sealed it, so that a
// later version whose manifest accepts that measurement (Keys.Accept)
// knows whose store it is given, and the hand-on key is the sealer's
// manifest's hand_on_key (zeros: none), the key whose holder may hand the
// store on (Keys.Vouch); a store of the first format (magic ending \x01,
// 64 bytes of header, neither) still opens.
//
// Each Seal draws a fresh salt and derives the AEAD key and the check value
// from the sealing key with HKDF-SHA256 ("ampoule/sealed/v1 key", "...
// check"), so the zero nonce is never reused under one key. The check tells
// "another measurement's store" from "an altered store" before decrypting.
// The whole header is the AEAD's additional data.
//
// The plaintext is the tree (every directory, file and symbolic link with
// its name, mode, time and contents) padded with zeros to a power of two of
// at least 4 KiB, so the host learns the store's size class and nothing of
// its names, the number of files or their lengths.
//
// What a host can still do is keep an older store and hand it back (a
// rollback) or delete it; no TEE here gives a monotonic counter to stop
// that, so a tenant who needs freshness keeps a version in the store and
// checks it against the broker.
package sealed

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"strings"
	"time"
)

// Magic opens every store Seal writes: a name and the format's version.
// MagicV1 opened the stores of the first format, which named no sealer.
const (
	Magic   = "AMPOULE-SEALED\x00\x02"
	MagicV1 = "AMPOULE-SEALED\x00\x01"
)

const (
	saltSize   = 32
	checkSize  = 16
	sealerSize = 48
	handOnSize = 32
	// HeaderSize is the header Seal writes; HeaderSizeV1 the first
	// format's.
	HeaderSize   = len(Magic) + saltSize + checkSize + sealerSize + handOnSize
	HeaderSizeV1 = len(MagicV1) + saltSize + checkSize
	// MinBucket is the smallest padded size: a store of a few small files
	// looks like an empty one.
	MinBucket = 4096
	// MaxPath bounds a name inside the tree, and a link's target.
	MaxPath = 4096
	// entryOverhead is an entry's fixed encoded size: kind, mode, time,
	// name length and data length.
	entryOverhead = 1 + 2 + 8 + 2 + 8
)

// Errors Open returns, each wrapped with detail.
var (
	// ErrForeign: the store was sealed under another key, that is another
	// measurement or another machine.
	ErrForeign = errors.New("sealed under another measurement or on another machine")
	// ErrTampered: the store was altered, truncated, padded, or is not a
	// store at all.
	ErrTampered = errors.New("altered, truncated or not a sealed store")
	// ErrTooLarge: the tree is larger than its bound.
	ErrTooLarge = errors.New("larger than the sealed mount's max_size")
)

// Kind is what an entry is.
type Kind uint8

const (
	Dir     Kind = 1
	File    Kind = 2
	Symlink Kind = 3
)

func (k Kind) String() string {
	switch k {
	case Dir:
		return "dir"
	case File:
		return "file"
	case Symlink:
		return "symlink"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Entry is one item of a sealed tree.
type Entry struct {
	// Path is slash-separated and relative to the mount, as fs.ValidPath
	// wants it ("a/b.txt", never "." or "../x").
	Path string
	Kind Kind
	// Mode holds the permission bits.
	Mode    fs.FileMode
	ModTime time.Time
	// Data is a file's contents or a link's target; empty for a directory.
	Data []byte
}

// Size is what the entry counts against a store's bound.
func (e *Entry) Size() int64 { return int64(entryOverhead + len(e.Path) + len(e.Data)) }

// Check reports whether entries form a tree a store may hold: valid, unique
// paths, each under a directory listed before it, in at most max bytes.
func Check(entries []Entry, max int64) error {
	dirs := map[string]bool{".": true}
	seen := map[string]bool{}
	var total int64
	for i := range entries {
		e := &entries[i]
		if len(e.Path) > MaxPath || !fs.ValidPath(e.Path) || e.Path == "." || strings.IndexByte(e.Path, 0) >= 0 {
			return fmt.Errorf("entry %d: %q is not a valid path", i, e.Path)
		}
		if seen[e.Path] {
			return fmt.Errorf("entry %d: %q appears twice", i, e.Path)
		}
		seen[e.Path] = true
		parent := "."
		if j := strings.LastIndexByte(e.Path, '/'); j >= 0 {
			parent = e.Path[:j]
		}
		if !dirs[parent] {
			return fmt.Errorf("entry %d: %q is not under a directory listed before it", i, e.Path)
		}
		if e.Mode&^fs.ModePerm != 0 {
			return fmt.Errorf("entry %d: %q: mode %v has more than permission bits", i, e.Path, e.Mode)
		}
		switch e.Kind {
		case Dir:
			if len(e.Data) != 0 {
				return fmt.Errorf("entry %d: directory %q has data", i, e.Path)
			}
			dirs[e.Path] = true
		case File:
		case Symlink:
			if len(e.Data) == 0 || len(e.Data) > MaxPath || bytes.IndexByte(e.Data, 0) >= 0 {
				return fmt.Errorf("entry %d: link %q has no valid target", i, e.Path)
			}
		default:
			return fmt.Errorf("entry %d: %q is of unknown kind %d", i, e.Path, e.Kind)
		}
		total += e.Size()
		if total > max {
			return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
		}
	}
	return nil
}

// bucket is the padded size of a plaintext of n bytes.
func bucket(n int) int {
	if n <= MinBucket {
		return MinBucket
	}
	return 1 << bits.Len(uint(n-1))
}

// encode lays the tree out, padded: body length (8) ‖ count (4) ‖ entries
// ‖ zeros.
func encode(entries []Entry) []byte {
	n := 8 + 4
	for i := range entries {
		n += int(entries[i].Size())
	}
	out := make([]byte, 12, bucket(n))
	binary.BigEndian.PutUint64(out[0:8], uint64(n-8))
	binary.BigEndian.PutUint32(out[8:12], uint32(len(entries)))
	for i := range entries {
		e := &entries[i]
		out = append(out, byte(e.Kind))
		out = binary.BigEndian.AppendUint16(out, uint16(e.Mode.Perm()))
		out = binary.BigEndian.AppendUint64(out, uint64(e.ModTime.UnixNano()))
		out = binary.BigEndian.AppendUint16(out, uint16(len(e.Path)))
		out = append(out, e.Path...)
		out = binary.BigEndian.AppendUint64(out, uint64(len(e.Data)))
		out = append(out, e.Data...)
	}
	return out[:cap(out)]
}

// decode reads what encode wrote and checks the tree. Every length is
// checked against what is left before it is used.
func decode(b []byte, max int64) ([]Entry, error) {
	if len(b) < 12 {
		return nil, errors.New("the tree is shorter than its header")
	}
	n := binary.BigEndian.Uint64(b[0:8])
	if n > uint64(len(b)-8) || n < 4 {
		return nil, fmt.Errorf("the tree says it is %d bytes, in %d", n, len(b))
	}
	body, pad := b[8:8+n], b[8+n:]
	for _, c := range pad {
		if c != 0 {
			return nil, errors.New("the padding is not zero")
		}
	}
	if len(b) != bucket(int(n)+8) {
		return nil, fmt.Errorf("the tree of %d bytes is padded to %d", n, len(b))
	}
	count := binary.BigEndian.Uint32(body[0:4])
	r := body[4:]
	if uint64(count) > uint64(len(r))/entryOverhead {
		return nil, fmt.Errorf("the tree claims %d entries in %d bytes", count, len(r))
	}
	entries := make([]Entry, 0, count)
	for i := uint32(0); i < count; i++ {
		if len(r) < 1+2+8+2 {
			return nil, fmt.Errorf("entry %d is cut short", i)
		}
		var e Entry
		e.Kind = Kind(r[0])
		e.Mode = fs.FileMode(binary.BigEndian.Uint16(r[1:3]))
		e.ModTime = time.Unix(0, int64(binary.BigEndian.Uint64(r[3:11]))).UTC()
		pl := int(binary.BigEndian.Uint16(r[11:13]))
		r = r[13:]
		if len(r) < pl+8 {
			return nil, fmt.Errorf("entry %d is cut short", i)
		}
		e.Path = string(r[:pl])
		dl := binary.BigEndian.Uint64(r[pl : pl+8])
		r = r[pl+8:]
		if dl > uint64(len(r)) {
			return nil, fmt.Errorf("entry %d's data is cut short", i)
		}
		if dl > 0 {
			e.Data = r[:dl:dl]
		}
		r = r[dl:]
		entries = append(entries, e)
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("%d bytes follow the last entry", len(r))
	}
	if err := Check(entries, max); err != nil {
		return nil, err
	}
	return entries, nil
}

// keys derives the AEAD key and the check value for one salt.
func keys(key, salt []byte) (cipher.AEAD, []byte, error) {
	if len(key) != 32 {
		return nil, nil, fmt.Errorf("a sealing key is 32 bytes, not %d", len(key))
	}
	k, err := hkdf.Key(sha256.New, key, salt, "ampoule/sealed/v1 key", 32)
	if err != nil {
		return nil, nil, err
	}
	check, err := hkdf.Key(sha256.New, key, salt, "ampoule/sealed/v1 check", checkSize)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	return aead, check, err
}

// Seal encrypts the tree under key (32 bytes) into a store that names
// sealer, the measurement of the run sealing it, and no hand-on key. The
// tree must pass Check against max.
func Seal(key []byte, sealer [48]byte, entries []Entry, max int64) ([]byte, error) {
	return SealHandingOn(key, sealer, [32]byte{}, entries, max)
}

// SealHandingOn is Seal naming handOn, the key whose holder may hand the
// store on to a later version (zeros: nobody).
func SealHandingOn(key []byte, sealer [48]byte, handOn [32]byte, entries []Entry, max int64) ([]byte, error) {
	if err := Check(entries, max); err != nil {
		return nil, err
	}
	header := make([]byte, HeaderSize)
	copy(header, Magic)
	salt := header[len(Magic) : len(Magic)+saltSize]
	if _, err := io.ReadFull(rand.Reader, salt); err != nil {
		return nil, err
	}
	aead, check, err := keys(key, salt)
	if err != nil {
		return nil, err
	}
	copy(header[len(Magic)+saltSize:], check)
	copy(header[len(Magic)+saltSize+checkSize:], sealer[:])
	copy(header[len(Magic)+saltSize+checkSize+sealerSize:], handOn[:])
	plain := encode(entries)
	out := make([]byte, HeaderSize, HeaderSize+len(plain)+aead.Overhead())
	copy(out, header)
	nonce := make([]byte, aead.NonceSize())
	out = aead.Seal(out, nonce, plain, header)
	clear(plain)
	return out, nil
}

// headerOf returns the store's header, of either format, or ErrTampered.
func headerOf(store []byte) ([]byte, error) {
	switch {
	case len(store) >= HeaderSize && string(store[:len(Magic)]) == Magic:
		return store[:HeaderSize], nil
	case len(store) >= HeaderSizeV1 && string(store[:len(MagicV1)]) == MagicV1:
		return store[:HeaderSizeV1], nil
	}
	return nil, fmt.Errorf("%w: it does not begin with a store's header", ErrTampered)
}

// Sealer returns the measurement the store's header names as the one that
// sealed it; named is false for a store of the first format, which names
// none. What it says is authenticated only once Open succeeds.
func Sealer(store []byte) (sealer [48]byte, named bool, err error) {
	h, err := headerOf(store)
	if err != nil {
		return sealer, false, err
	}
	if len(h) == HeaderSizeV1 {
		return sealer, false, nil
	}
	copy(sealer[:], h[len(Magic)+saltSize+checkSize:])
	return sealer, true, nil
}

// HandOnKey returns the hand-on key the store's header names (zeros for
// none, and for a store of the first format). It is authenticated only
// once Open succeeds.
func HandOnKey(store []byte) ([32]byte, error) {
	var k [32]byte
	h, err := headerOf(store)
	if err != nil || len(h) == HeaderSizeV1 {
		return k, err
	}
	copy(k[:], h[len(Magic)+saltSize+checkSize+sealerSize:])
	return k, nil
}

// MaxStore is the largest store Open reads for a tree of at most max bytes.
func MaxStore(max int64) int64 {
	return int64(HeaderSize) + int64(bucket(int(max)+12)) + 16
}

// Open decrypts a store sealed under key and returns its tree, which holds
// at most max bytes. It fails with ErrForeign when another key sealed it,
// and with ErrTampered when anything else is wrong.
func Open(key, store []byte, max int64) ([]Entry, error) {
	header, err := headerOf(store)
	if err != nil {
		return nil, err
	}
	if int64(len(store)) > MaxStore(max) {
		return nil, fmt.Errorf("%w: %d bytes is more than a store of max_size %d can be", ErrTampered, len(store), max)
	}
	aead, check, err := keys(key, header[len(Magic):len(Magic)+saltSize])
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(check, header[len(Magic)+saltSize:len(Magic)+saltSize+checkSize]) != 1 {
		return nil, ErrForeign
	}
	nonce := make([]byte, aead.NonceSize())
	plain, err := aead.Open(nil, nonce, store[len(header):], header)
	if err != nil {
		return nil, fmt.Errorf("%w: the ciphertext does not authenticate", ErrTampered)
	}
	entries, err := decode(plain, max)
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	return entries, nil
}
