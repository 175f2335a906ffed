package sandbox

import (
	"io"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/shim"
)

// quotaFS is a writable mount over a fresh directory with a sealed
// mount's quota of max bytes, and the codes the run's limits were hit with.
func quotaFS(t *testing.T, max int64) (experimentalsys.FS, *quota, *fileLimits, *[]errcode.Code) {
	t.Helper()
	root, err := shim.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	hits := new([]errcode.Code)
	hit := func(c errcode.Code) { *hits = append(*hits, c) }
	q := &quota{max: max, code: errcode.SealedSizeLimit, hit: hit}
	files := &fileLimits{hit: hit, written: budget{code: errcode.FileOutputLimit, hit: hit}}
	return newConfinedFS(root, true, files, q, nil), q, files, hits
}

// TestSealedQuotaCountsWhatTheStoreHolds: every call that makes something
// in a sealed mount is charged what the sealed store will spend on it (an
// entry's path and fixed overhead, a link's target, a hard link's copy of
// the data, the holes a write or a truncate leaves), and the run's
// file_output a block per entry beside the bytes.
func TestSealedQuotaCountsWhatTheStoreHolds(t *testing.T) {
	fsys, q, files, hits := quotaFS(t, 1<<20)
	entry := func(path string) int64 { return entryOverhead + int64(len(path)) }
	var want, wantFiles int64
	step := func(what string, e experimentalsys.Errno, quotaCost, fileCost int64) {
		t.Helper()
		want += quotaCost
		wantFiles += fileCost
		if e != 0 || q.used != want || files.written.used != wantFiles {
			t.Errorf("%s: errno %v, quota %d (want %d), file output %d (want %d)", what, e, q.used, want, files.written.used, wantFiles)
		}
		want, wantFiles = q.used, files.written.used
	}
	f, e := fsys.OpenFile("f", experimentalsys.O_CREAT|experimentalsys.O_RDWR, 0o644)
	step("create f", e, entry("f"), inodeCost)
	_, e = f.Write(make([]byte, 100))
	step("write 100 bytes", e, 100, 100)
	step("mkdir d", fsys.Mkdir("d", 0o755), entry("d"), inodeCost)
	step("symlink d/s -> f", fsys.Symlink("../f", "d/s"), 4+entry("d/s"), 4+inodeCost)
	step("link h to f", fsys.Link("f", "h"), 100+entry("h"), inodeCost)
	_, e = f.Pwrite([]byte{1}, 1000)
	step("write a byte at 1000", e, 901, 901)
	step("truncate to 2000", f.Truncate(2000), 999, 999)
	_, e = f.Seek(3000, io.SeekStart)
	step("seek to 3000", e, 0, 0)
	_, e = f.Write([]byte{1})
	step("write a byte there", e, 1001, 1001)
	f.Close()
	g, e := fsys.OpenFile("f", experimentalsys.O_CREAT|experimentalsys.O_RDWR, 0o644)
	step("open f again, as it is", e, 0, 0)
	g.Close()
	if len(*hits) != 0 {
		t.Errorf("limits hit: %v", *hits)
	}
}

// TestSealedQuotaIsExact: a sealed mount takes exactly max bytes and not
// one more; what is removed gives nothing back.
func TestSealedQuotaIsExact(t *testing.T) {
	const max = 1000
	fsys, _, _, hits := quotaFS(t, max)
	f, e := fsys.OpenFile("f", experimentalsys.O_CREAT|experimentalsys.O_WRONLY, 0o644)
	if e != 0 {
		t.Fatal(e)
	}
	defer f.Close()
	if n, e := f.Write(make([]byte, max-entryOverhead-1)); e != 0 || n != max-entryOverhead-1 {
		t.Fatalf("writing up to the quota: %d, errno %v", n, e)
	}
	if _, e := f.Write([]byte{1}); e != experimentalsys.EPERM {
		t.Errorf("a byte past the quota: errno %v, want EPERM", e)
	}
	if e := fsys.Unlink("f"); e != 0 {
		t.Fatal(e)
	}
	if e := fsys.Mkdir("d", 0o755); e != experimentalsys.EPERM {
		t.Errorf("a directory after removing the full file: errno %v, want EPERM", e)
	}
	if len(*hits) != 2 || (*hits)[0] != errcode.SealedSizeLimit || (*hits)[1] != errcode.SealedSizeLimit {
		t.Errorf("limits hit: %v, want SealedSizeLimit twice", *hits)
	}
}

// TestFileOutputIsExact: the run's file_output takes exactly its bound, and
// a negative charge, which would make room, is refused as a breach.
func TestFileOutputIsExact(t *testing.T) {
	var hits []errcode.Code
	l := &fileLimits{written: budget{max: 100, code: errcode.FileOutputLimit, hit: func(c errcode.Code) { hits = append(hits, c) }}}
	if e := l.written.take(-50); e != experimentalsys.EPERM {
		t.Errorf("a negative charge: errno %v, want EPERM", e)
	}
	if e := l.written.take(100); e != 0 {
		t.Errorf("the whole bound: errno %v", e)
	}
	if e := l.written.take(1); e != experimentalsys.EPERM {
		t.Errorf("a byte past the bound: errno %v, want EPERM", e)
	}
	if len(hits) != 2 || hits[0] != errcode.FileOutputLimit || hits[1] != errcode.FileOutputLimit {
		t.Errorf("limits hit: %v, want FileOutputLimit twice", hits)
	}
}
