package sealed

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// sealPlain seals plain, a tree's plaintext as decode reads it, the way
// Seal does: what only the key's holder could make, so that what Open
// refuses in it is refused by decode's own checks, not by the AEAD.
func sealPlain(t *testing.T, plain []byte) []byte {
	t.Helper()
	header := make([]byte, HeaderSize)
	copy(header, Magic)
	salt := header[len(Magic) : len(Magic)+saltSize]
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	aead, check, err := keys(testKey, salt)
	if err != nil {
		t.Fatal(err)
	}
	copy(header[len(Magic)+saltSize:], check)
	return aead.Seal(header, make([]byte, aead.NonceSize()), plain, header)
}

// TestOpenRefusesATreeNotAsEncoded: a tree has exactly one plaintext, the
// one encode lays out; padding of another length, bytes between the last
// entry and the padding, or padding that is not zero are refused even
// under the right key.
func TestOpenRefusesATreeNotAsEncoded(t *testing.T) {
	good := encode(tree())
	if out, err := Open(testKey, sealPlain(t, good), 1<<20); err != nil || !reflect.DeepEqual(out, tree()) {
		t.Fatalf("the tree as encoded: %v", err)
	}
	for name, change := range map[string]func([]byte) []byte{
		"padded past its bucket": func(b []byte) []byte { return append(b, make([]byte, len(b))...) },
		"bytes after the last entry": func(b []byte) []byte {
			// The body claims three bytes of the padding: zeros, in the
			// same bucket.
			binary.BigEndian.PutUint64(b[0:8], binary.BigEndian.Uint64(b[0:8])+3)
			return b
		},
		"padding not zero": func(b []byte) []byte { b[len(b)-1] = 1; return b },
	} {
		plain := change(append([]byte(nil), good...))
		if _, err := Open(testKey, sealPlain(t, plain), 1<<20); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: %v, want ErrTampered", name, err)
		}
	}
}

// TestOpenRefusesAStoreBeyondMaxSize: a store larger than any a tree of
// max_size seals to is refused before it is decrypted, even when it is
// genuine and only sealed under a larger bound.
func TestOpenRefusesAStoreBeyondMaxSize(t *testing.T) {
	const max = 4096
	big := []Entry{{Path: "f", Kind: File, Mode: 0o644, ModTime: time.Unix(0, 0).UTC(), Data: make([]byte, 10000)}}
	store, err := Seal(testKey, testSealer, big, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(store)) <= MaxStore(max) {
		t.Fatalf("a %d-byte store is not beyond MaxStore(%d) = %d", len(store), max, MaxStore(max))
	}
	if _, err := Open(testKey, store, max); !errors.Is(err, ErrTampered) {
		t.Errorf("a %d-byte store under max_size %d: %v, want ErrTampered", len(store), max, err)
	}
}

// TestSaveReplacesTheStoreWhole: Save puts a new file in the store's place
// (written aside, then renamed); it never rewrites the old one in place, so
// a crash or a failure halfway leaves the old store whole. A second name of
// the old file keeps what it held.
func TestSaveReplacesTheStoreWhole(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.sealed")
	if err := Save(file, testKey, testSealer, tree(), 1<<20); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old.sealed")
	if err := os.Link(file, old); err != nil {
		t.Fatal(err)
	}
	if err := Save(file, testKey, testSealer, tree()[:1], 1<<20); err != nil {
		t.Fatal(err)
	}
	if entries, _, err := Load(old, testKey, 1<<20); err != nil || !reflect.DeepEqual(entries, tree()) {
		t.Errorf("the old store was changed in place: %d entries, %v", len(entries), err)
	}
	if entries, _, err := Load(file, testKey, 1<<20); err != nil || !reflect.DeepEqual(entries, tree()[:1]) {
		t.Errorf("the new store: %d entries, %v", len(entries), err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 2 {
		t.Errorf("the directory holds %v", names)
	}
}
