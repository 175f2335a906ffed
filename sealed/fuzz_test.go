package sealed

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzOpen: any bytes open to a valid tree or fail with one of Open's
// errors; nothing panics or allocates past the bound.
func FuzzOpen(f *testing.F) {
	if store, err := Seal(testKey, testSealer, tree(), 1<<20); err == nil {
		f.Add(store)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Open(testKey, data, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrForeign) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if err := Check(entries, 1<<20); err != nil {
			t.Fatalf("opened a bad tree: %v", err)
		}
	})
}

// FuzzDecode: the tree decoder accepts exactly what encode writes: a
// decoded tree passes Check and encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(encode(tree()))
	f.Add(encode(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := decode(data, 1<<20)
		if err != nil {
			return
		}
		if err := Check(entries, 1<<20); err != nil {
			t.Fatalf("decoded a bad tree: %v", err)
		}
		if again := encode(entries); !bytes.Equal(again, data) {
			t.Fatalf("decode accepted bytes encode does not write:\n%x\n%x", data, again)
		}
	})
}

// FuzzKeysOpen: any bytes, as a store handed to a run that accepts an
// earlier version's, open to a valid tree sealed by the run or by the
// accepted version, or fail with one of Open's errors.
func FuzzKeysOpen(f *testing.F) {
	if store, err := Seal(teeKeys[m1], m1, tree(), 1<<20); err == nil {
		f.Add(store)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := teeKeysFor(m2, m1).Open(data, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrTampered) && !errors.Is(err, ErrForeign) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if o.From != nil && *o.From != m1 {
			t.Fatalf("opened as %x's", o.From[:])
		}
		if err := Check(o.Entries, 1<<20); err != nil {
			t.Fatalf("opened a bad tree: %v", err)
		}
	})
}
