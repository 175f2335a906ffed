package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/ampoule-run/ampoule/shim"
)

// TestAllocateAnswersFromOneStat runs fd_allocate through the gate, whose
// amendment answers a file already long enough from the one
// fd_filestat_get it makes and sends only a file to grow on to wazero:
// both answer success, the first leaves the file as it was, the second
// grows it; a directory is EISDIR and an end past 2^63 EINVAL, as wazero
// answers it.
func TestAllocateAnswersFromOneStat(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi, err := gatedWASI(ctx, rt, shim.Gate(), nil, &linkLookup{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.InstantiateModule(ctx, wasi, wazero.NewModuleConfig()); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile("testdata/allocate.wasm")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("sixteen bytes..\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithStartFunctions().
		WithFSConfig(wazero.NewFSConfig().WithDirMount(dir, "/")))
	if err != nil {
		t.Fatal(err)
	}
	call := func(name string, args ...uint64) uint64 {
		t.Helper()
		res, err := mod.ExportedFunction(name).Call(ctx, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res[0]
	}
	fd := call("open")
	sizes := func() (guest uint64, host int64) {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		return call("size", fd), st.Size()
	}
	for _, c := range []struct {
		what        string
		fd          uint64
		offset, len uint64
		errno       shim.Errno
		size        int64
	}{
		{"within the file", fd, 0, 8, 0, 16},
		{"to its end exactly", fd, 4, 12, 0, 16},
		{"past its end", fd, 8, 24, 0, 32},
		{"within the grown file", fd, 0, 32, 0, 32},
		{"an end past 2^63", fd, 1<<63 - 1, 2, shim.EINVAL, 32},
		{"the directory", 3, 0, 1, shim.EISDIR, 32},
	} {
		if got := call("allocate", c.fd, c.offset, c.len); got != uint64(c.errno) {
			t.Errorf("fd_allocate %s: %s, want %s", c.what, shim.ErrnoName(uint32(got)), shim.ErrnoName(uint32(c.errno)))
		}
		if guest, host := sizes(); guest != uint64(c.size) || host != c.size {
			t.Errorf("after fd_allocate %s: fd_filestat_get says %d bytes, the host %d, want %d", c.what, guest, host, c.size)
		}
	}
	if b, err := os.ReadFile(f); err != nil || string(b[:16]) != "sixteen bytes..\n" {
		t.Errorf("fd_allocate changed the file's bytes: %q (%v)", b, err)
	}
}
