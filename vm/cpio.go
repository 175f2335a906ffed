package vm

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// File is one entry of an initramfs.
type File struct {
	// Name is the entry's path, relative, slash-separated ("init",
	// "bundle/ampoule.toml").
	Name string
	// Mode is the entry's type and permission bits (S_IFREG, S_IFDIR or
	// S_IFCHR with 0o7777).
	Mode uint32
	// Data is a regular file's contents.
	Data []byte
	// Major and Minor are a device node's numbers.
	Major, Minor uint32
}

// The file types an initramfs holds.
const (
	ModeDir  = 0o040000
	ModeReg  = 0o100000
	ModeChar = 0o020000
)

// WriteCPIO writes files as one newc ("070701") cpio archive, as the
// kernel unpacks an initramfs: sorted by name, every parent directory
// before what it holds, owner root, modification time zero and inode
// numbers in that order, so the same files give the same bytes. A name
// that is absolute, unclean or given twice is an error.
func WriteCPIO(w io.Writer, files []File) error {
	seen := map[string]bool{}
	all := make([]File, 0, len(files))
	for _, f := range files {
		if f.Name == "" || path.IsAbs(f.Name) || path.Clean(f.Name) != f.Name || strings.HasPrefix(f.Name, "..") {
			return fmt.Errorf("initramfs: the name %q is not a clean relative path", f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("initramfs: %q given twice", f.Name)
		}
		switch f.Mode &^ 0o7777 {
		case ModeDir, ModeReg, ModeChar:
		default:
			return fmt.Errorf("initramfs: %q is not a file, directory or character device", f.Name)
		}
		seen[f.Name] = true
		all = append(all, f)
	}
	// Parents the list does not name are made 0755.
	for _, f := range files {
		for d := path.Dir(f.Name); d != "."; d = path.Dir(d) {
			if !seen[d] {
				seen[d] = true
				all = append(all, File{Name: d, Mode: ModeDir | 0o755})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	var buf bytes.Buffer
	for i, f := range all {
		data := f.Data
		if f.Mode&^0o7777 != ModeReg {
			data = nil
		}
		nlink := 1
		if f.Mode&^0o7777 == ModeDir {
			nlink = 2
		}
		writeEntry(&buf, uint32(i+1), f.Mode, uint32(nlink), f.Major, f.Minor, f.Name, data)
	}
	writeEntry(&buf, 0, 0, 1, 0, 0, "TRAILER!!!", nil)
	// The kernel reads the archive in 512-byte blocks, as cpio writes it.
	for buf.Len()%512 != 0 {
		buf.WriteByte(0)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// writeEntry writes one newc header (13 fields of 8 hex digits after the
// magic), the name with its NUL padded to 4 bytes, and the data padded to 4.
func writeEntry(buf *bytes.Buffer, ino, mode, nlink, major, minor uint32, name string, data []byte) {
	fmt.Fprintf(buf, "070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, major, minor, len(name)+1, 0)
	buf.WriteString(name)
	buf.WriteByte(0)
	pad(buf)
	buf.Write(data)
	pad(buf)
}

func pad(buf *bytes.Buffer) {
	for buf.Len()%4 != 0 {
		buf.WriteByte(0)
	}
}
