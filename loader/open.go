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
	return OpenKnown(path, nil)
}

// OpenKnown is Open for a caller that may already hold the module's bytes:
// known, when not nil, is asked for the bytes it expects of a module of a
// given size (nil: none). A module read from a bundle directory or a bare
// module file whose bytes all equal those is the Bundle's Module as that
// very slice, which the caller and the Bundle must never change; any other
// module is read as Open reads it. Either way the Module holds exactly the
// bytes read from the file by this call: the known bytes are compared with
// the file's, piece by piece, never taken for them. A module compared this
// way is never copied into a buffer of its own, which for a module of
// megabytes is most of the cost of reading it (fresh pages, zeroed).
func OpenKnown(path string, known func(size int64) []byte) (*Bundle, error) {
	st, err := os.Stat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errcode.Errorf(errcode.BundleNotFound, "%s does not exist", path).Host()
		}
		return nil, errcode.Errorf(errcode.BundleUnreadable, "%v", err)
	}
	if st.IsDir() {
		b, err := fromFS(regfile.DirFS(path), path, known)
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
		var data []byte
		if st, serr := f.Stat(); serr == nil && known != nil && st.Size() <= MaxModuleBytes {
			data, err = readKnown(f, path, MaxModuleBytes, st.Size(), known(st.Size()))
			if err != nil {
				return nil, err
			}
		} else if data, err = io.ReadAll(io.LimitReader(f, MaxModuleBytes+1)); err != nil {
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
