package sealed

import (
	"fmt"
	"path/filepath"
	"testing"
)

// benchTree is n files of size bytes each in one directory.
func benchTree(n, size int) []Entry {
	entries := []Entry{{Path: "d", Kind: Dir, Mode: 0o700}}
	for i := 0; i < n; i++ {
		entries = append(entries, Entry{Path: fmt.Sprintf("d/f%04d", i), Kind: File, Mode: 0o600, Data: make([]byte, size)})
	}
	return entries
}

// BenchmarkStore is a run's whole cost of a sealed mount: open the store
// and unpack it into a tmpfs workspace, then pack it and seal it back.
func BenchmarkStore(b *testing.B) {
	for _, tc := range []struct{ n, size int }{{10, 1 << 10}, {64, 16 << 10}, {16, 1 << 20}} {
		tree := benchTree(tc.n, tc.size)
		total := int64(0)
		for i := range tree {
			total += tree[i].Size()
		}
		b.Run(fmt.Sprintf("%dx%dKiB", tc.n, tc.size>>10), func(b *testing.B) {
			file := filepath.Join(b.TempDir(), "b.sealed")
			if err := Save(file, testKey, testSealer, tree, 64<<20); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(total)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				entries, _, err := Load(file, testKey, 64<<20)
				if err != nil {
					b.Fatal(err)
				}
				ws, release, err := NewWorkspace(WorkspaceBases())
				if err != nil {
					b.Fatal(err)
				}
				if err := WriteDir(ws, entries); err != nil {
					b.Fatal(err)
				}
				back, err := ReadDir(ws, 64<<20)
				if err != nil {
					b.Fatal(err)
				}
				if err := Save(file, testKey, testSealer, back, 64<<20); err != nil {
					b.Fatal(err)
				}
				release()
			}
		})
	}
}

// BenchmarkSealOpen is the cryptography alone, 16 MiB.
func BenchmarkSealOpen(b *testing.B) {
	tree := benchTree(16, 1<<20)
	b.SetBytes(16 << 20)
	for i := 0; i < b.N; i++ {
		store, err := Seal(testKey, testSealer, tree, 64<<20)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Open(testKey, store, 64<<20); err != nil {
			b.Fatal(err)
		}
	}
}
