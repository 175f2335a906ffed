package sandbox

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/shim"
)

// TestPrestatDirNameFollowsCloseAndRenumber: fd_prestat_dir_name
// remembers a preopen's name length after the first ask, so a guest that
// asks, then closes or renumbers the preopen, must get the answers for
// what the number names now: EBADF for the closed mount, where the
// remembered length would answer ENAMETOOLONG, and the moved mount's
// length at its new number.
func TestPrestatDirNameFollowsCloseAndRenumber(t *testing.T) {
	ctx := context.Background()
	rt := gatedRuntime(ctx, t)
	i32 := byte(0x7f)
	// Each call's errno is stored at 4*k; names go to 48.
	var body []byte
	store := func(k byte, call ...byte) {
		body = append(body, 0x41, 4*k) // i32.const 4k
		body = append(body, call...)
		body = append(body, 0x36, 0x02, 0x00) // i32.store
	}
	dirName := func(fd, bufLen byte) []byte { // fd_prestat_dir_name(fd, 48, bufLen)
		return []byte{0x41, fd, 0x41, 48, 0x41, bufLen, 0x10, 0}
	}
	store(0, dirName(3, 16)...)         // "/d": success, learnt
	store(1, dirName(4, 16)...)         // "/longer": success, learnt
	store(2, 0x41, 3, 0x10, 1)          // fd_close(3)
	store(3, dirName(3, 0)...)          // closed: EBADF
	store(4, 0x41, 5, 0x41, 4, 0x10, 2) // fd_renumber(5, 4): "/e" onto "/longer"
	store(5, dirName(4, 6)...)          // "/e" at 4 now: success
	store(6, dirName(5, 16)...)         // 5 names nothing: EBADF
	store(7, 0x41, 4, 0x41, 6, 0x10, 2) // fd_renumber(4, 6): "/e" onto "/sixth"
	store(8, dirName(6, 1)...)          // "/e" at 6: ENAMETOOLONG for 1 byte
	store(9, dirName(6, 2)...)          // and success for 2
	bin := testwasm.Assemble(testwasm.Spec{
		Imports: []testwasm.Import{
			{Module: "wasi_snapshot_preview1", Name: "fd_prestat_dir_name", Params: []byte{i32, i32, i32}, Result: []byte{i32}},
			{Module: "wasi_snapshot_preview1", Name: "fd_close", Params: []byte{i32}, Result: []byte{i32}},
			{Module: "wasi_snapshot_preview1", Name: "fd_renumber", Params: []byte{i32, i32}, Result: []byte{i32}},
		},
		Memory: true, MemoryMin: 1, ExportMemory: true,
		Start: body,
	})
	d := t.TempDir()
	fs := wazero.NewFSConfig().WithDirMount(d, "/d").WithDirMount(d, "/longer").
		WithDirMount(d, "/e").WithDirMount(d, "/sixth")
	guest, err := rt.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithFSConfig(fs))
	if err != nil {
		t.Fatal(err)
	}
	want := []uint32{0, 0, 0, uint32(shim.EBADF), 0, 0, uint32(shim.EBADF), 0, uint32(shim.ENAMETOOLONG), 0}
	for k, w := range want {
		got, ok := guest.Memory().ReadUint32Le(uint32(4 * k))
		if !ok || got != w {
			t.Errorf("call %d: errno %d, want %d", k, got, w)
		}
	}
	if name, _ := guest.Memory().Read(48, 2); string(name) != "/e" {
		t.Errorf("last name %q, want \"/e\"", name)
	}
}
