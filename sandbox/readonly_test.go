package sandbox

import (
	"os"
	"path/filepath"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/shim"
)

// A read-only mount's file system, as the guest's calls reach it (wazero's
// read-only wrapper over the confined one), changes nothing on the host:
// an open that only reads may not create, truncate or append either, and
// every call that makes, removes or changes an entry is refused.
func TestReadOnlyMountChangesNothing(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := shim.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var hits []errcode.Code
	limits := &fileLimits{hit: func(c errcode.Code) { hits = append(hits, c) }}
	fsys := newConfinedFS(root, false, limits, nil, nil)

	for name, flag := range map[string]experimentalsys.Oflag{
		"O_TRUNC":  experimentalsys.O_RDONLY | experimentalsys.O_TRUNC,
		"O_CREAT":  experimentalsys.O_RDONLY | experimentalsys.O_CREAT,
		"O_APPEND": experimentalsys.O_RDONLY | experimentalsys.O_APPEND,
	} {
		for _, path := range []string{"f", "new"} {
			f, e := fsys.OpenFile(path, flag, 0o644)
			if e == 0 {
				f.Close()
			}
			if e != experimentalsys.EROFS {
				t.Errorf("read-only open of %s with %s: errno %v, want EROFS", path, name, e)
			}
		}
	}
	for name, e := range map[string]experimentalsys.Errno{
		"mkdir":   fsys.Mkdir("d", 0o755),
		"unlink":  fsys.Unlink("f"),
		"rename":  fsys.Rename("f", "g"),
		"link":    fsys.Link("f", "h"),
		"symlink": fsys.Symlink("f", "s"),
		"utimens": fsys.Utimens("f", 0, 0),
	} {
		if e != experimentalsys.EROFS {
			t.Errorf("%s in a read-only mount: errno %v, want EROFS", name, e)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "contents" {
		t.Errorf("the host file is now %q (%v)", b, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the mount now holds %v", entries)
	}
	// What only reads still works.
	f, e := fsys.OpenFile("f", experimentalsys.O_RDONLY, 0)
	if e != 0 {
		t.Fatalf("read-only open: errno %v", e)
	}
	buf := make([]byte, 16)
	if n, e := f.Read(buf); e != 0 || string(buf[:n]) != "contents" {
		t.Errorf("read %q, errno %v", buf[:n], e)
	}
	f.Close()
	if len(hits) != 0 {
		t.Errorf("limits hit: %v", hits)
	}
}
