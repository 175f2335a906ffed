package regfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOnlyRegularFiles: a regular file reads whole; a FIFO without a writer,
// a character device and a directory are ErrNotRegular, without blocking,
// through a link too; DirFS opens a FIFO without blocking and its Stat
// tells.
func TestOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	reg, fifo, link := filepath.Join(dir, "f"), filepath.Join(dir, "p"), filepath.Join(dir, "l")
	os.WriteFile(reg, []byte("contents"), 0o644)
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink(fifo, link)
	if b, err := ReadFile(reg); err != nil || string(b) != "contents" {
		t.Fatalf("regular: %q %v", b, err)
	}
	for _, p := range []string{fifo, link, "/dev/null", dir} {
		if _, err := ReadFile(p); !errors.Is(err, ErrNotRegular) {
			t.Errorf("%s: %v, want ErrNotRegular", p, err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	f, err := DirFS(dir).Open("p")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || st.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("DirFS stat of a fifo: %v %v", st, err)
	}
	if _, err := DirFS(dir).Open("../x"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("DirFS took an invalid path: %v", err)
	}
}
