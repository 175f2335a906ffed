package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// readonlyCalls names the calls testdata/readonly-writes.wat makes, in the
// order it reports their errnos.
var readonlyCalls = []string{
	"path_open read only", "path_open FD_WRITE", "path_open O_CREAT", "path_open O_TRUNC", "path_open FDFLAGS_APPEND",
	"fd_write", "fd_pwrite", "fd_filestat_set_size", "fd_filestat_set_times", "fd_allocate",
	"path_create_directory", "path_filestat_set_times", "path_symlink", "path_link", "path_rename",
	"path_unlink_file", "path_remove_directory",
}

// WASI errnos.
const (
	wasiOK     = 0
	wasiEACCES = 2
	wasiENOSYS = 52
	wasiEROFS  = 69
)

// runReadonlyWrites runs readonly-writes.wat against a mount holding f, f2,
// u and d, and returns each call's errno and the mount's directory.
func runReadonlyWrites(t *testing.T, writable bool) ([]byte, string) {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"f", "f2", "u"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("contents"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	_, err := Run(context.Background(), Spec{
		Module: testwasm.Committed(t, filepath.Join("testdata", "readonly-writes.wat")), Name: "w",
		Dirs: []Mount{{Host: dir, Guest: "/m", Writable: writable}}, Stdout: &stdout,
		MemoryPages: 16, WallTime: 10 * time.Second, OpenFiles: 16, FileOutputBytes: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != len(readonlyCalls) {
		t.Fatalf("the module reported %d errnos, want %d", stdout.Len(), len(readonlyCalls))
	}
	return stdout.Bytes(), dir
}

// TestReadOnlyMountWritesAreEROFS: every write-like WASI call a guest can
// make in a read-only mount fails with EROFS (fd_ calls too, on the
// descriptor the mount gave for reading), never ENOSYS or EBADF, and
// changes nothing on the host. The same calls in a writable mount succeed, so each errno is
// the mount's refusal and not a malformed call.
func TestReadOnlyMountWritesAreEROFS(t *testing.T) {
	got, dir := runReadonlyWrites(t, false)
	for i, name := range readonlyCalls {
		want := byte(wasiEROFS)
		if i == 0 {
			want = wasiOK
		}
		if got[i] != want {
			t.Errorf("%s in a read-only mount: errno %d, want %d", name, got[i], want)
		}
		if got[i] == wasiENOSYS {
			t.Errorf("%s in a read-only mount: ENOSYS", name)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("the read-only mount now holds %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "contents" {
		t.Errorf("f is now %q", b)
	}

	got, _ = runReadonlyWrites(t, true)
	for i, name := range readonlyCalls {
		if got[i] != wasiOK {
			t.Errorf("%s in a writable mount: errno %d, want 0", name, got[i])
		}
	}
}
