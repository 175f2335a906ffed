package codecache

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzEntry: whatever bytes the host puts in a disk entry, reading it
// never panics, and what it accepts is exactly what sealing that name and
// code under the key, with the entry's salt, writes: nothing else carries
// a valid tag.
func FuzzEntry(f *testing.F) {
	c := &Cache{digest: [48]byte{1, 2, 3}, modSize: 100}
	key := bytes.Repeat([]byte{7}, 32)
	name := strings.Repeat("ab", 32)
	good, err := c.seal(name, []byte("compiled code"), key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:len(magic)+3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var code bytes.Buffer
		h, err := c.read(bytes.NewReader(data), int64(len(data)), &code)
		if err != nil {
			return
		}
		if c.verify(h, key, code.Bytes()) != nil {
			return
		}
		again, err := c.sealWith(h.salt, h.name, code.Bytes(), key)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("accepted an entry that sealing %q does not write (%v)", h.name, err)
		}
	})
}
