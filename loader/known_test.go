package loader

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

// knownBundle writes a bundle directory whose module is module.
func knownBundle(t *testing.T, module []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ManifestName), []byte("name = \"k\"\nmodule = \"m.wasm\"\nprofiles = [\"debug\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "m.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOpenKnown: a module equal to the known bytes is those bytes, not a
// copy; one that differs anywhere (its first byte, a byte in a later
// piece, its last byte), is longer or is shorter is read as it is, and the
// known bytes are left as they were.
func TestOpenKnown(t *testing.T) {
	module := append(append([]byte{}, wasmMagic...), bytes.Repeat([]byte("0123456789abcdef"), 3*knownPiece/16+5)...)
	flip := func(i int) []byte {
		b := bytes.Clone(module)
		b[i] ^= 0xff
		return b
	}
	for _, c := range []struct {
		name string
		file []byte
	}{
		{"the same", module},
		{"a byte in its first piece differs", flip(len(wasmMagic))},
		{"a byte in its third piece differs", flip(2*knownPiece + 7)},
		{"its last byte differs", flip(len(module) - 1)},
		{"longer", append(bytes.Clone(module), 'x')},
		{"a piece longer", append(bytes.Clone(module), make([]byte, knownPiece)...)},
		{"shorter", module[:len(module)-3]},
	} {
		t.Run(c.name, func(t *testing.T) {
			known := bytes.Clone(module)
			asked := int64(-1)
			b, err := OpenKnown(knownBundle(t, c.file), func(size int64) []byte {
				asked = size
				return known
			})
			if err != nil {
				t.Fatal(err)
			}
			if asked != int64(len(c.file)) {
				t.Errorf("known was asked for size %d, the file's is %d", asked, len(c.file))
			}
			if !bytes.Equal(b.Module, c.file) {
				t.Fatalf("module of %d bytes, not the file's %d", len(b.Module), len(c.file))
			}
			same := len(b.Module) > 0 && unsafe.SliceData(b.Module) == unsafe.SliceData(known)
			if want := bytes.Equal(c.file, module); same != want {
				t.Errorf("module is the known slice: %v, want %v", same, want)
			}
			if !bytes.Equal(known, module) {
				t.Error("the known bytes were changed")
			}
		})
	}
}

// TestOpenKnownBareModule: a bare module file is compared as a bundle's
// module is, and a caller that knows nothing reads it as Open does.
func TestOpenKnownBareModule(t *testing.T) {
	module := append(append([]byte{}, wasmMagic...), make([]byte, knownPiece+1)...)
	path := filepath.Join(t.TempDir(), "m.wasm")
	if err := os.WriteFile(path, module, 0o644); err != nil {
		t.Fatal(err)
	}
	known := bytes.Clone(module)
	b, err := OpenKnown(path, func(int64) []byte { return known })
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(b.Module) != unsafe.SliceData(known) || !b.Generated {
		t.Errorf("bare module: known slice %v, generated manifest %v", unsafe.SliceData(b.Module) == unsafe.SliceData(known), b.Generated)
	}
	b, err = OpenKnown(path, func(int64) []byte { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Module, module) || unsafe.SliceData(b.Module) == unsafe.SliceData(known) {
		t.Error("with nothing known the module is not read as it is")
	}
}

// FuzzReadKnown: whatever the file and the known bytes, readKnown returns
// exactly what readLimited reads, or the same error.
func FuzzReadKnown(f *testing.F) {
	f.Add([]byte("abc"), []byte("abc"), int64(10))
	f.Add([]byte("abcd"), []byte("abc"), int64(10))
	f.Add([]byte("ab"), []byte("abc"), int64(10))
	f.Add([]byte("abcdefgh"), []byte("abcdefgh"), int64(4))
	f.Add(bytes.Repeat([]byte{1}, knownPiece+3), bytes.Repeat([]byte{1}, knownPiece+2), int64(knownPiece+2))
	f.Fuzz(func(t *testing.T, file, want []byte, limit int64) {
		if limit < 0 || limit > 4*knownPiece {
			return
		}
		got, gerr := readKnown(bytes.NewReader(file), "m", limit, int64(len(file)), want)
		exp, eerr := readLimited(bytes.NewReader(file), "m", limit, int64(len(file)))
		if (gerr == nil) != (eerr == nil) {
			t.Fatalf("readKnown error %v, readLimited %v", gerr, eerr)
		}
		if gerr == nil && !bytes.Equal(got, exp) {
			t.Fatalf("readKnown read %d bytes, readLimited %d", len(got), len(exp))
		}
	})
}
