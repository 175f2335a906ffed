package loader

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
)

// Open reads the bundle at path, whichever form it has: a bundle
// directory, a .tar bundle, or a bare module (a file that starts like
// WebAssembly, or is named *.wasm), for which it generates a manifest. It
// reads regular files only: a FIFO or a device named by the host is
// refused, never read (E1004). A missing path is E1002, an unreadable
// one E1003.
func Open(path string) (*Bundle, error) {
	st, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errcode.Errorf(errcode.BundleNotFound, "%s does not exist", path).Host()
		}
		return nil, errcode.Errorf(errcode.BundleUnreadable, "%v", err)
	}
	if st.IsDir() {
		b, err := FromFS(regfile.DirFS(path), path)
		if b != nil {
			b.Dir = path
		}
		return b, err
	}
	f, _, err := regfile.Open(path)
	if errors.Is(err, regfile.ErrNotRegular) {
		return nil, errcode.Errorf(errcode.BundleMalformed, "%v", err).
			WithHint("pass a bundle directory, a .tar bundle or (debug only) a .wasm module, as a regular file")
	}
	if err != nil {
		return nil, errcode.Errorf(errcode.BundleUnreadable, "%v", err)
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, errcode.Errorf(errcode.BundleUnreadable, "%v", err)
	}
	if IsWasm(head[:n]) || strings.HasSuffix(path, ".wasm") {
		data, err := io.ReadAll(io.LimitReader(f, MaxModuleBytes+1))
		if err != nil {
			return nil, errcode.Errorf(errcode.BundleUnreadable, "%v", err)
		}
		return FromModule(data, path)
	}
	b, err := FromTar(f, path)
	if b != nil {
		b.Dir = filepath.Dir(path)
	}
	return b, err
}
