package ampoule

import (
	"bytes"
	"context"
	"crypto/sha512"
	"os"
	"path/filepath"
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
)

// The memo's digest is the module's SHA-384 whichever bytes come: the same
// bytes again (hit), bytes of the same length with one changed, and bytes
// it evicted; it keeps what it holds within its bound.
func TestModuleDigests(t *testing.T) {
	var d moduleDigests
	a := bytes.Repeat([]byte("a"), 1<<20)
	b := bytes.Clone(a)
	b[len(b)/2] = 'b'
	for i, m := range [][]byte{a, a, b, a, b} {
		if got, want := d.sum(m), sha512.Sum384(m); got != want {
			t.Fatalf("sum %d: got %x, want %x", i, got, want)
		}
	}
	if len(d.entries) != 2 {
		t.Fatalf("%d entries kept, want 2", len(d.entries))
	}
	// The caller's slice changing later changes nothing the memo holds.
	a[0] = 'z'
	if got, want := d.sum(a), sha512.Sum384(a); got != want {
		t.Fatalf("a changed in place: got %x, want %x", got, want)
	}
	for i := range 80 {
		m := bytes.Repeat([]byte{byte(i)}, 1<<20)
		if got, want := d.sum(m), sha512.Sum384(m); got != want {
			t.Fatalf("module %d: wrong digest", i)
		}
	}
	if d.bytes > digestMemo {
		t.Fatalf("the memo holds %d bytes, past its bound of %d", d.bytes, digestMemo)
	}
}

// A served run measures and runs the bytes at the path when it runs: a
// module rewritten in place with the same length between two requests (one
// byte of its data changed) gets its own measurement and its own output,
// not the remembered module's.
func TestServerModuleRewritten(t *testing.T) {
	dir := t.TempDir()
	bundle := testwasm.CopyBundle(t, "testdata/tiny", "name = \"tiny\"\nversion = \"1.0.0\"\nprofiles = [\"debug\"]\n")
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 1, Spare: 1})
	defer s.Shutdown(context.Background())
	run := func() (Result, string) {
		t.Helper()
		var out bytes.Buffer
		res, err := s.Run(context.Background(), bundle, serverConfig(t, dir, &out))
		if err != nil {
			t.Fatal(err)
		}
		return res, out.String()
	}
	measured := func() loader.Measurement {
		t.Helper()
		b, err := loader.Open(bundle)
		if err != nil {
			t.Fatal(err)
		}
		return loader.Measure(b, "debug")
	}
	first, out := run()
	if first.Measurement != measured() || out != "hello from a tiny module\n" {
		t.Fatalf("first run: measurement %s, output %q", first.Measurement, out)
	}
	waitIdle(t, s, 1)
	module := filepath.Join(bundle, "module.wasm")
	data, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("tiny module"))
	data[i] = 'T'
	if err := os.WriteFile(module, data, 0o644); err != nil {
		t.Fatal(err)
	}
	second, out := run()
	if second.Measurement == first.Measurement || second.Measurement != measured() {
		t.Fatalf("rewritten: measurement %s, first %s, the bytes' %s", second.Measurement, first.Measurement, measured())
	}
	if out != "hello from a Tiny module\n" {
		t.Fatalf("rewritten: output %q, want the new bytes' own", out)
	}
}
