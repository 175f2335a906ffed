package codecache

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzEntry: whatever bytes the host puts in a disk entry, reading it
// never panics, and what it accepts is exactly what sealing that name and
// code under the key writes: nothing else carries a valid MAC.
func FuzzEntry(f *testing.F) {
	c := &Cache{digest: [48]byte{1, 2, 3}, modSize: 100}
	key := bytes.Repeat([]byte{7}, 32)
	name := strings.Repeat("ab", 32)
	good := c.seal(name, []byte("compiled code"), key)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good[:len(magic)+3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var code bytes.Buffer
		n, err := c.read(bytes.NewReader(data), int64(len(data)), key, &code)
		if err != nil {
			return
		}
		if !bytes.Equal(c.seal(n, code.Bytes(), key), data) {
			t.Fatalf("accepted an entry that sealing %q does not write", n)
		}
	})
}
