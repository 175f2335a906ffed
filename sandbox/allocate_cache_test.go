package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/shim"
)

// TestAllocateFollowsClose: fd_allocate remembers that a descriptor is a
// regular file and sends it to wazero without a stat after, so a number
// closed and opened again on a directory must be EISDIR, not wazero's
// success.
func TestAllocateFollowsClose(t *testing.T) {
	ctx := context.Background()
	rt := gatedRuntime(ctx, t)
	i32, i64 := byte(0x7f), byte(0x7e)
	var body []byte
	store := func(k byte, call ...byte) { // errno at 4k
		body = append(body, 0x41, 4*k)
		body = append(body, call...)
		body = append(body, 0x36, 0x02, 0x00)
	}
	open := func(path, oflags, rights, result byte) []byte { // path_open(3, 0, path, 1, oflags, rights, rights, 0, result)
		return []byte{0x41, 3, 0x41, 0, 0x41, path, 0x41, 1, 0x41, oflags, 0x42, rights, 0x42, rights, 0x41, 0, 0x41, result, 0x10, 0}
	}
	allocate := []byte{0x41, 4, 0x42, 0, 0x42, 10, 0x10, 1} // fd_allocate(4, 0, 10)
	store(0, open(48, 1, 0x7f, 56)...)                      // create "f": fd 4
	store(1, allocate...)                                   // a regular file: success
	store(2, 0x41, 4, 0x10, 2)                              // fd_close(4)
	store(3, open(52, 2, 0, 60)...)                         // open directory "d": fd 4 again
	store(4, allocate...)                                   // a directory: EISDIR
	bin := testwasm.Assemble(testwasm.Spec{
		Imports: []testwasm.Import{
			{Module: "wasi_snapshot_preview1", Name: "path_open", Params: []byte{i32, i32, i32, i32, i32, i64, i64, i32, i32}, Result: []byte{i32}},
			{Module: "wasi_snapshot_preview1", Name: "fd_allocate", Params: []byte{i32, i64, i64}, Result: []byte{i32}},
			{Module: "wasi_snapshot_preview1", Name: "fd_close", Params: []byte{i32}, Result: []byte{i32}},
		},
		Memory: true, MemoryMin: 1, ExportMemory: true,
		Start: body,
	})
	d := t.TempDir()
	if err := os.Mkdir(filepath.Join(d, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	guest, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().
		WithFSConfig(wazero.NewFSConfig().WithDirMount(d, "/")).WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	guest.Memory().Write(48, []byte("f\x00\x00\x00d"))
	if _, err := guest.ExportedFunction("_start").Call(ctx); err != nil {
		t.Fatal(err)
	}
	want := []uint32{0, 0, 0, 0, uint32(shim.EISDIR)}
	for k, w := range want {
		if got, _ := guest.Memory().ReadUint32Le(uint32(4 * k)); got != w {
			t.Errorf("call %d: errno %d, want %d", k, got, w)
		}
	}
	for _, at := range []uint32{56, 60} {
		if fd, _ := guest.Memory().ReadUint32Le(at); fd != 4 {
			t.Errorf("path_open's descriptor at %d: %d, want 4", at, fd)
		}
	}
}
