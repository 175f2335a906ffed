package measure

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// tdvfSection is a row of a synthetic image's TDVF metadata: data offset,
// raw size, GPA, memory size, kind, attributes.
type tdvfSection [6]uint64

// syntheticSections are an OVMF-like layout: a measured BFV ending at
// 4 GiB, an unmeasured CFV below it, TEMP_MEM and TD_HOB sections.
var syntheticSections = []tdvfSection{
	{0x2000, 0xe000, 0xffff2000, 0xe000, TDVFBFV, 1},
	{0, 0x2000, 0xffff0000, 0x2000, TDVFCFV, 0},
	{0, 0, 0x810000, 0x3000, TDVFTempMem, 0},
	{0, 0, 0x809000, 0x2000, TDVFTDHOB, 0},
	{0, 0, 0x800000, 0x6000, TDVFTempMem, 0},
}

// onePageSections are the smallest image's: a measured BFV page at the
// top of 4 GiB and a TD HOB page.
var onePageSections = []tdvfSection{{0, 0x1000, 0xfffff000, 0x1000, TDVFBFV, 1}, {0, 0, 0x800000, 0x1000, TDVFTDHOB, 0}}

// tdvfImage is a synthetic TDVF image of size bytes: SHA-256 of a counter
// as filler, the TDX metadata GUID and the metadata at 0xf0, and an OVMF
// footer table with the TDX metadata offset entry.
func tdvfImage(size int, secs []tdvfSection) []byte {
	img := make([]byte, size)
	for i := 0; i < size; i += 32 {
		var c [8]byte
		binary.LittleEndian.PutUint64(c[:], uint64(i))
		h := sha256.Sum256(c[:])
		copy(img[i:], h[:])
	}
	le16, le32, le64 := binary.LittleEndian.PutUint16, binary.LittleEndian.PutUint32, binary.LittleEndian.PutUint64
	g := guidLE("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae")
	copy(img[0xf0:], g[:])
	md := img[0x100:]
	copy(md, "TDVF")
	le32(md[4:], uint32(16+32*len(secs)))
	le32(md[8:], 1)
	le32(md[12:], uint32(len(secs)))
	for i, s := range secs {
		d := md[16+32*i:]
		le32(d, uint32(s[0]))
		le32(d[4:], uint32(s[1]))
		le64(d[8:], s[2])
		le64(d[16:], s[3])
		le32(d[24:], uint32(s[4]))
		le32(d[28:], uint32(s[5]))
	}
	end := size - 32
	le16(img[end-18:], 18+22)
	copy(img[end-16:], guidFooterTable[:])
	e := img[end-18-22:]
	le32(e, uint32(size-0x100))
	le16(e[4:], 22)
	copy(e[6:], guidTDXMetadata[:])
	return img
}

func mustTDVF(t testing.TB, data []byte) *TDVF {
	t.Helper()
	td, err := ParseTDVF(data)
	if err != nil {
		t.Fatal(err)
	}
	return td
}

// TestMRTDReference checks MRTD (page by page, upstream KVM's order)
// against google/gce-tcb-verifier's tdx.MRTD with LaunchOptionsDefault,
// run on the same images (testdata/README.md says how): the synthetic
// image, built here, and Debian 12's OVMF.fd when it is installed.
func TestMRTDReference(t *testing.T) {
	img := tdvfImage(0x10000, syntheticSections)
	if h := sha256.Sum256(img); hex.EncodeToString(h[:]) != "41fb055e958a159544407d430ec94d950c75960e5246ef5c7c0bf81182e99abe" {
		t.Fatalf("the synthetic image is %x, not the bytes the reference measured", h)
	}
	const synthetic = "abab05914dc13f1b83ef5c694a16d11924427fdfe38045c0fc84bf10d01d5432991065e22ee0379d5c8f99423f2b646e"
	if d := mustTDVF(t, img).MRTD(TDXPageByPage); hex.EncodeToString(d[:]) != synthetic {
		t.Errorf("synthetic image: MRTD %x, gce-tcb-verifier's %s", d, synthetic)
	}

	// Debian 12's ovmf 2022.11-6+deb12u2 (2 MiB, too large to copy here):
	// the test setup installs it for the boot test.
	const debian = "/usr/share/ovmf/OVMF.fd"
	data, err := os.ReadFile(debian)
	if err != nil {
		t.Skipf("%v: apt-get install ovmf for the Debian firmware's vector", err)
	}
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773" {
		t.Skipf("%s is %x, not ovmf 2022.11-6+deb12u2's OVMF.fd, whose MRTD the reference computed", debian, h)
	}
	const want = "4c7206f0f483c524f12c366c711e9049030a8d47c471ee5aa9c4999a08de4057fb887fed0744d5631a212967fb231c47"
	if d := mustTDVF(t, data).MRTD(TDXPageByPage); hex.EncodeToString(d[:]) != want {
		t.Errorf("Debian OVMF.fd: MRTD %x, gce-tcb-verifier's %s", d, want)
	}
}

// TestOnePageImage: testdata/tdvf_one_page.bin, which the vm package's
// tests measure, is tdvfImage's one-page image (a measured BFV page and
// a TD HOB page), so its bytes are made as this file says.
func TestOnePageImage(t *testing.T) {
	data, err := os.ReadFile("testdata/tdvf_one_page.bin")
	if err != nil {
		t.Fatal(err)
	}
	if want := tdvfImage(0x1000, onePageSections); !bytes.Equal(data, want) {
		t.Error("testdata/tdvf_one_page.bin is not tdvfImage(0x1000, onePageSections)")
	}
	td := mustTDVF(t, data)
	if len(td.Sections) != 2 || !td.Sections[0].ExtendMR || td.Sections[1].Kind != TDVFTDHOB {
		t.Errorf("sections %+v", td.Sections)
	}
}

// TestMRTDInputsCount: what the TDX module measures moves MRTD, and what
// it does not (an unmeasured section's bytes) leaves it.
func TestMRTDInputsCount(t *testing.T) {
	base := tdvfImage(0x10000, syntheticSections)
	d0 := mustTDVF(t, base).MRTD(TDXPageByPage)
	if d1 := mustTDVF(t, base).MRTD(TDXTwoPass); d1 == d0 {
		t.Errorf("the two orders give the same MRTD %x", d0)
	}
	bfv := bytes.Clone(base)
	bfv[0x8000] ^= 1
	if d := mustTDVF(t, bfv).MRTD(TDXPageByPage); d == d0 {
		t.Error("a changed BFV byte leaves MRTD")
	}
	cfv := bytes.Clone(base)
	cfv[0x1000] ^= 1
	if d := mustTDVF(t, cfv).MRTD(TDXPageByPage); d != d0 {
		t.Error("a changed byte of the unmeasured CFV changes MRTD")
	}
	secs := append([]tdvfSection(nil), syntheticSections...)
	secs[3][3] = 0x3000 // a bigger TD HOB: one more page added
	if d := mustTDVF(t, tdvfImage(0x10000, secs)).MRTD(TDXPageByPage); d == d0 {
		t.Error("a bigger TD HOB leaves MRTD")
	}
	secs = append([]tdvfSection(nil), syntheticSections...)
	secs[0], secs[1] = secs[1], secs[0]
	if d := mustTDVF(t, tdvfImage(0x10000, secs)).MRTD(TDXPageByPage); d == d0 {
		t.Error("reordered sections leave MRTD")
	}
}

// TestParseTDVFRefusals: images QEMU would not launch a TD from are E1078.
func TestParseTDVFRefusals(t *testing.T) {
	set := func(i, f int, v uint64) []tdvfSection {
		s := append([]tdvfSection(nil), syntheticSections...)
		s[i][f] = v
		return s
	}
	badSig := tdvfImage(0x10000, syntheticSections)
	copy(badSig[0x100:], "TDVX")
	for name, img := range map[string][]byte{
		"no footer table":     make([]byte, 0x10000),
		"not whole pages":     tdvfImage(0x10000, syntheticSections)[:0x10000-1],
		"signature":           badSig,
		"no sections":         tdvfImage(0x10000, nil),
		"unaligned gpa":       tdvfImage(0x10000, set(0, 2, 0xffff2001)),
		"unaligned size":      tdvfImage(0x10000, set(2, 3, 0x3001)),
		"raw beyond firmware": tdvfImage(0x10000, set(0, 0, 0x4000)),
		"raw beyond memory":   tdvfImage(0x10000, set(1, 3, 0x1000)),
		"bfv without bytes":   tdvfImage(0x10000, set(0, 1, 0)),
		"td hob with bytes":   tdvfImage(0x10000, set(3, 1, 0x1000)),
		"unknown kind":        tdvfImage(0x10000, set(2, 4, 9)),
		"unknown attributes":  tdvfImage(0x10000, set(0, 5, 0x11)),
		"gpa wraps":           tdvfImage(0x10000, set(2, 2, 0xfffffffffffff000)),
	} {
		_, err := ParseTDVF(img)
		if errcode.From(err).Code != errcode.FirmwareInvalid {
			t.Errorf("%s: %v, not E1078", name, err)
		}
	}
}

func FuzzParseTDVF(f *testing.F) {
	f.Add(tdvfImage(0x10000, syntheticSections))
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := ParseTDVF(data)
		if err != nil {
			if errcode.From(err).Code != errcode.FirmwareInvalid {
				t.Fatalf("%v is not E1078", err)
			}
			return
		}
		td.MRTD(TDXPageByPage)
		td.MRTD(TDXTwoPass)
	})
}
