package sandbox

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSealModuleChecksWhatItSealed: the module's memory file is filled and
// sealed once the runner has started; bytes another writer put there
// before the seals (here, past the module's end) are refused, and a file
// sealed as written holds exactly the module, sealed against change.
func TestSealModuleChecksWhatItSealed(t *testing.T) {
	mod := bytes.Repeat([]byte("\x00asm\x01\x00\x00\x00"), 1000)
	f, err := newModuleFile()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(append(bytes.Repeat([]byte{'x'}, len(mod)), "more"...), 0); err != nil {
		t.Fatal(err)
	}
	if err := sealModule(f, mod); err == nil {
		t.Errorf("a memory file another writer grew was sealed and taken")
	}

	g, err := newModuleFile()
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := sealModule(g, mod); err != nil {
		t.Fatal(err)
	}
	seals, err := unix.FcntlInt(g.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals&moduleSeals != moduleSeals {
		t.Errorf("seals %#x (%v), want %#x", seals, err, moduleSeals)
	}
	if _, err := g.WriteAt([]byte("y"), 0); err == nil {
		t.Errorf("a sealed module file took a write")
	}
	got, err := mapModule(g)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, mod) {
		t.Errorf("the sealed file holds %d bytes other than the module's %d", len(got), len(mod))
	}
}
