// Package loader reads bundles, validates manifests and measures what will run.
//
// It is pure: callers hand it bytes, readers or an fs.FS and get values back.
// Every error is an *errcode.Error with a registered code and a hint.
package loader

import (
	"archive/tar"
	"bytes"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
)

// MaxModuleBytes bounds a module's size.
const MaxModuleBytes = 256 << 20

// maxTarBytes bounds how much of a tar stream is read: the two files, their
// headers and some slack for padding and directory entries.
const maxTarBytes = MaxModuleBytes + MaxManifestBytes + 64<<10

// wasmMagic starts every core WebAssembly module (magic and version 1).
var wasmMagic = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// Bundle is a manifest and the exact module bytes it names. The module is read
// once: what is measured is what runs.
type Bundle struct {
	// Source names the bundle in messages.
	Source   string
	Manifest *Manifest
	// ManifestBytes is ampoule.toml as read, or nil for a generated manifest.
	ManifestBytes []byte
	Module        []byte
	// Generated is true for a bare module run with a generated manifest.
	Generated bool
	// Dir is the directory the manifest's relative host paths resolve
	// against: a bundle directory itself, a .tar bundle's directory, or
	// "" for a bare module. Open sets it.
	Dir string
	// Archive is true for a bundle read from a tar archive, whose
	// relative dirs are host directories beside the archive.
	Archive bool
}

// IsWasm reports whether b starts like a core WebAssembly module.
func IsWasm(b []byte) bool { return bytes.HasPrefix(b, wasmMagic) }

// FromFS reads a bundle directory. fsys is rooted at the bundle; source names
// it in messages.
func FromFS(fsys fs.FS, source string) (*Bundle, error) {
	return fromFS(fsys, source, nil)
}

// fromFS is FromFS, its module compared with known's bytes (OpenKnown).
func fromFS(fsys fs.FS, source string, known func(size int64) []byte) (*Bundle, error) {
	manifest, err := readFile(fsys, ManifestName, MaxManifestBytes, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errcode.Errorf(errcode.ManifestMissing, "%s has no %s", source, ManifestName)
	}
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(path.Join(source, ManifestName), manifest)
	if err != nil {
		return nil, err
	}
	module, err := readFile(fsys, m.Module, MaxModuleBytes, known)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errcode.Errorf(errcode.ModuleMissing, "%s has no %s", source, m.Module)
	}
	if err != nil {
		return nil, err
	}
	return newBundle(source, m, manifest, module)
}

func readFile(fsys fs.FS, name string, limit int64, known func(size int64) []byte) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, errcode.Errorf(errcode.BundleUnreadable, "%v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, errcode.Errorf(errcode.BundleUnreadable, "%v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, errcode.Errorf(errcode.BundleMalformed, "%s is not a regular file", name)
	}
	if st.Size() > limit {
		return nil, errcode.Errorf(errcode.BundleTooLarge, "%s is %d bytes, more than the %d allowed", name, st.Size(), limit)
	}
	if known != nil {
		return readKnown(f, name, limit, st.Size(), known(st.Size()))
	}
	return readLimited(f, name, limit, st.Size())
}

// knownPiece is how much of a module readKnown reads at a time: small
// enough to stay in the cache it is compared from.
const knownPiece = 64 << 10

// readKnown reads at most limit bytes, as readLimited does, comparing them
// piece by piece with want: if every byte read equals want's and there are
// as many, it returns want itself. At the first difference it goes on as
// readLimited, from the bytes read so far (want's prefix, which they
// equal, and the piece that differed).
func readKnown(r io.Reader, name string, limit, sizeHint int64, want []byte) ([]byte, error) {
	if len(want) == 0 || int64(len(want)) > limit {
		return readLimited(r, name, limit, sizeHint)
	}
	piece := make([]byte, knownPiece)
	off := 0
	for {
		n, err := io.ReadFull(r, piece)
		if n > 0 && (off+n > len(want) || !bytes.Equal(piece[:n], want[off:off+n])) {
			b := make([]byte, 0, max(min(max(sizeHint, 0), limit), int64(off+n))+1)
			b = append(append(b, want[:off]...), piece[:n]...)
			if int64(len(b)) > limit {
				return nil, errcode.Errorf(errcode.BundleTooLarge, "%s is larger than %d bytes", name, limit)
			}
			if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
				return nil, errcode.Errorf(errcode.BundleUnreadable, "reading %s: %v", name, err)
			}
			if err != nil {
				return b, nil
			}
			return readMore(r, name, limit, b)
		}
		off += n
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if off == len(want) {
				return want, nil
			}
			// Shorter than want: what was read, which want's prefix is.
			return append([]byte(nil), want[:off]...), nil
		case err != nil:
			return nil, errcode.Errorf(errcode.BundleUnreadable, "reading %s: %v", name, err)
		}
	}
}

// readLimited reads at most limit bytes. sizeHint (what a stat reported; the
// read does not trust it) sizes the buffer, so that a module is read into
// one allocation: fresh pages are costly, and a Go guest is megabytes.
func readLimited(r io.Reader, name string, limit, sizeHint int64) ([]byte, error) {
	return readMore(r, name, limit, make([]byte, 0, min(max(sizeHint, 0), limit)+1))
}

// readMore is readLimited appending to b, what was read before.
func readMore(r io.Reader, name string, limit int64, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow as append does
		}
		n, err := r.Read(b[len(b):min(int64(cap(b)), limit+1)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, errcode.Errorf(errcode.BundleTooLarge, "%s is larger than %d bytes", name, limit)
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, errcode.Errorf(errcode.BundleUnreadable, "reading %s: %v", name, err)
		}
	}
}

// FromTar reads a bundle from a tar stream. Only ampoule.toml and the module it
// names are used, at the archive's top level (a leading "./" is allowed);
// nested entries are ignored. A duplicate name, or a link or device where the
// manifest or the module should be, is malformed.
func FromTar(r io.Reader, source string) (*Bundle, error) {
	tr := tar.NewReader(&limitedReader{r: r, n: maxTarBytes})
	files := map[string][]byte{}
	special := map[string]bool{} // top-level entries that are not regular files
	var nested []string          // the other entries, cleaned
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, errTarTooLarge) {
				return nil, errcode.Errorf(errcode.BundleTooLarge, "%s is larger than %d bytes", source, maxTarBytes)
			}
			return nil, errcode.Errorf(errcode.BundleMalformed, "%s: not a readable tar archive: %v", source, err).
				WithHint("make the bundle with: tar -cf bundle.tar -C DIR ampoule.toml module.wasm")
		}
		name := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "" || name == "." || strings.Contains(name, "/") {
			if clean := path.Clean(name); clean != "." {
				nested = append(nested, clean)
			}
			continue // the root or a nested entry: not part of the bundle
		}
		if _, dup := files[name]; dup || special[name] {
			return nil, errcode.Errorf(errcode.BundleMalformed, "%s: %s appears twice", source, name).
				WithHint("a bundle holds each file once; rebuild the archive")
		}
		if h.Typeflag != tar.TypeReg {
			if h.Typeflag == tar.TypeDir {
				nested = append(nested, name)
			}
			special[name] = true
			continue
		}
		limit := int64(MaxModuleBytes)
		if name == ManifestName {
			limit = MaxManifestBytes
		}
		if h.Size > limit {
			return nil, errcode.Errorf(errcode.BundleTooLarge, "%s: %s is %d bytes, more than the %d allowed", source, name, h.Size, limit)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			if errors.Is(err, errTarTooLarge) {
				return nil, errcode.Errorf(errcode.BundleTooLarge, "%s is larger than %d bytes", source, maxTarBytes)
			}
			return nil, errcode.Errorf(errcode.BundleMalformed, "%s: %s is truncated: %v", source, name, err).
				WithHint("the archive was cut short; copy it again")
		}
		files[name] = b
	}
	if special[ManifestName] {
		return nil, errcode.Errorf(errcode.BundleMalformed, "%s: %s is not a regular file", source, ManifestName)
	}
	manifest, ok := files[ManifestName]
	if !ok {
		return nil, errcode.Errorf(errcode.ManifestMissing, "%s has no %s at its top level", source, ManifestName)
	}
	m, err := ParseManifest(source+":"+ManifestName, manifest)
	if err != nil {
		return nil, err
	}
	if special[m.Module] {
		return nil, errcode.Errorf(errcode.BundleMalformed, "%s: %s is not a regular file", source, m.Module)
	}
	module, ok := files[m.Module]
	if !ok {
		return nil, errcode.Errorf(errcode.ModuleMissing, "%s has no %s at its top level", source, m.Module)
	}
	if err := checkArchiveDirs(source, m, nested); err != nil {
		return nil, err
	}
	b, err := newBundle(source, m, manifest, module)
	if b != nil {
		b.Archive = true
	}
	return b, err
}

// checkArchiveDirs refuses a tar bundle whose manifest mounts, by a
// relative path, a directory the archive itself holds entries under. A
// tar bundle's relative dirs are host directories beside the archive, and
// the archive's own entries are neither mounted nor measured: mounting
// them would let whoever holds the archive change what the tenant packed
// without the measurement changing, and mounting the host's directory in
// their place would silently run with other files than those packed.
// Neither is what such a bundle asks for, so it is refused (E1047).
func checkArchiveDirs(source string, m *Manifest, nested []string) error {
	for i, d := range m.Dirs {
		if path.IsAbs(d.Host) {
			continue
		}
		host := path.Clean(d.Host)
		for _, name := range nested {
			if host == "." || name == host || strings.HasPrefix(name, host+"/") {
				return errcode.Errorf(errcode.ArchiveDirInside, "%s: dirs[%d] mounts %s, and the archive holds %s: a .tar bundle's relative dirs are host directories beside the archive, and its own entries are neither mounted nor measured", source, i, d.Host, name).
					WithHint("unpack the archive and run the directory (its " + host + "/ is mounted, as a host directory), or carry the files in the module or the [sealed] mount")
			}
		}
	}
	return nil
}

var errTarTooLarge = errors.New("tar stream too large")

// limitedReader fails, rather than returning EOF, past n bytes, so that an
// oversized archive is not mistaken for a truncated one.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errTarTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// FromModule wraps a bare module in a generated manifest that allows only the
// debug profile. name is the module's file name.
func FromModule(module []byte, name string) (*Bundle, error) {
	if len(module) > MaxModuleBytes {
		return nil, errcode.Errorf(errcode.BundleTooLarge, "%s is larger than %d bytes", name, MaxModuleBytes)
	}
	base := path.Base(strings.ReplaceAll(name, "\\", "/"))
	m := &Manifest{
		Name:     generatedName(base),
		Module:   base,
		Env:      map[string]string{},
		Profiles: []string{"debug"},
		Limits:   DefaultLimits(),
	}
	b, err := newBundle(name, m, nil, module)
	if err != nil {
		return nil, err
	}
	b.Generated = true
	return b, nil
}

// generatedName turns a file name into a valid manifest name.
func generatedName(file string) string {
	s := strings.ToLower(strings.TrimSuffix(file, path.Ext(file)))
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	n := strings.TrimLeft(b.String(), "._-")
	if len(n) > 64 {
		n = n[:64]
	}
	if n == "" {
		n = "module"
	}
	return n
}

func newBundle(source string, m *Manifest, manifest, module []byte) (*Bundle, error) {
	if !IsWasm(module) {
		hint := "build the module for GOOS=wasip1 GOARCH=wasm (or another WASI preview 1 target)"
		what := "does not start with the WebAssembly magic number"
		if len(module) >= 8 && bytes.HasPrefix(module, wasmMagic[:4]) {
			what = fmt.Sprintf("is WebAssembly binary version %x, not a core module (version 1)", module[4:8])
			hint = "Ampoule runs core modules (WASI preview 1), not components"
		}
		return nil, errcode.Errorf(errcode.ModuleNotWasm, "%s: %s %s", source, m.Module, what).WithHint(hint)
	}
	return &Bundle{
		Source:        source,
		Manifest:      m,
		ManifestBytes: manifest,
		Module:        module,
	}, nil
}

// ModuleSHA384 is the digest of Module. It is computed on each call (a few
// milliseconds for a Go guest), so that a launcher can hash while the runner
// compiles.
func (b *Bundle) ModuleSHA384() [48]byte { return sha512.Sum384(b.Module) }
