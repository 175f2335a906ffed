package measure

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"hash"

	"github.com/ampoule-run/ampoule/errcode"
)

// guidTDXMetadata is the footer table entry giving the TDVF metadata's
// distance from the image's end (TDVF Design Guide, section 11).
var guidTDXMetadata = guidLE("e47a6535-984a-4798-865e-4685a7bf8ec2")

// The kinds of TDVF metadata sections (TDVF Design Guide, table 11-4).
const (
	TDVFBFV = iota
	TDVFCFV
	TDVFTDHOB
	TDVFTempMem
	TDVFPermMem
	TDVFPayload
	TDVFPayloadParam
)

// tdvfExtendMR is the section attribute asking the host to measure the
// section's bytes (TDH.MR.EXTEND), not only its pages' addresses.
const tdvfExtendMR = 1

// TDVFSection is one TDVF metadata section: Size bytes of guest memory at
// GPA, the first len(Data) of them from the image, the rest zero.
type TDVFSection struct {
	GPA, Size uint64
	Kind      uint32
	// ExtendMR says the section's contents are measured (MR.EXTEND).
	ExtendMR bool
	Data     []byte
}

// TDVF is a TDX firmware image's metadata: the sections the host adds to
// the TD before it runs.
type TDVF struct {
	Sections []TDVFSection
}

// ParseTDVF reads a firmware image's TDVF metadata, found through the
// OVMF footer table. An image without it, or with sections that do not
// fit the image or are not whole pages, is E1078: QEMU would refuse to
// launch a TD from it.
func ParseTDVF(data []byte) (*TDVF, error) {
	o, err := ParseOVMF(data)
	if err != nil {
		return nil, err
	}
	off, ok := o.u32(guidTDXMetadata)
	if !ok {
		return nil, tdvfInvalid("the firmware has no TDVF metadata: use an OVMF built with TDX support (OvmfPkg/IntelTdx, or OvmfPkgX64 of edk2-stable202208 or later)")
	}
	start := len(data) - int(off)
	if off < 16 || int(off) > len(data) {
		return nil, tdvfInvalid("the TDVF metadata's offset %#x is outside the firmware", off)
	}
	h := data[start:]
	size, version, n := binary.LittleEndian.Uint32(h[4:]), binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
	if !bytes.Equal(h[:4], []byte("TDVF")) || version != 1 {
		return nil, tdvfInvalid("the TDVF metadata has signature %q version %d, not TDVF version 1", h[:4], version)
	}
	if n == 0 || size < 16 || uint64(size) > uint64(len(h)) || uint64(n)*32 > uint64(size-16) {
		return nil, tdvfInvalid("the TDVF metadata's %d sections do not fit its %d bytes", n, size)
	}
	t := &TDVF{}
	var memory uint64
	for i := range int(n) {
		d := h[16+32*i:]
		dataOff, raw := binary.LittleEndian.Uint32(d), binary.LittleEndian.Uint32(d[4:])
		s := TDVFSection{GPA: binary.LittleEndian.Uint64(d[8:]), Size: binary.LittleEndian.Uint64(d[16:]),
			Kind: binary.LittleEndian.Uint32(d[24:]), ExtendMR: binary.LittleEndian.Uint32(d[28:])&tdvfExtendMR != 0}
		attr := binary.LittleEndian.Uint32(d[28:])
		if s.GPA%4096 != 0 || s.Size%4096 != 0 || s.Size == 0 || s.GPA+s.Size < s.GPA || s.GPA+s.Size > 1<<52 {
			return nil, tdvfInvalid("TDVF section %d (%#x bytes at %#x) is not whole pages of guest memory", i, s.Size, s.GPA)
		}
		if uint64(raw) > s.Size || uint64(dataOff)+uint64(raw) > uint64(len(data)) {
			return nil, tdvfInvalid("TDVF section %d's %#x bytes at offset %#x are outside the firmware or its %#x bytes of memory", i, raw, dataOff, s.Size)
		}
		switch s.Kind {
		case TDVFBFV, TDVFCFV:
			if raw == 0 {
				return nil, tdvfInvalid("TDVF section %d of kind %d has no bytes in the firmware", i, s.Kind)
			}
		case TDVFTDHOB, TDVFTempMem, TDVFPermMem:
			if raw != 0 || s.ExtendMR && s.Kind == TDVFPermMem {
				return nil, tdvfInvalid("TDVF section %d of kind %d has bytes in the firmware or is measured", i, s.Kind)
			}
		case TDVFPayload, TDVFPayloadParam:
		default:
			return nil, tdvfInvalid("TDVF section %d is of unknown kind %d", i, s.Kind)
		}
		if attr&^3 != 0 {
			return nil, tdvfInvalid("TDVF section %d has unknown attributes %#x", i, attr)
		}
		if memory += s.Size; memory > uint64(maxFirmwareBytes) {
			return nil, tdvfInvalid("the TDVF sections add more than %d MiB to the TD", maxFirmwareBytes>>20)
		}
		s.Data = data[dataOff : dataOff+raw]
		t.Sections = append(t.Sections, s)
	}
	return t, nil
}

// tdvfInvalid is E1078 with a hint for the TDX firmware.
func tdvfInvalid(format string, args ...any) error {
	return errcode.Errorf(errcode.FirmwareInvalid, format, args...).
		WithHint("pass the TDVF 'launch vm run --backend tdx --firmware' is given: an OVMF with TDVF metadata, such as Debian's /usr/share/ovmf/OVMF.fd").Host()
}

// TDXOrder is the order in which the host adds and measures a TD's
// initial pages, which MRTD depends on.
type TDXOrder int

const (
	// TDXPageByPage adds each page and then measures it, section by
	// section: upstream KVM's KVM_TDX_INIT_MEM_REGION, which QEMU calls
	// per section.
	TDXPageByPage TDXOrder = iota
	// TDXTwoPass adds every section's pages first and measures them
	// after: some vendor hosts (tdx-measure's --two-pass-add-pages).
	TDXTwoPass
)

// mrtd is the TD measurement as it grows: a SHA-384 over 128-byte
// records (TDX module ABI, TDH.MEM.PAGE.ADD and TDH.MR.EXTEND).
type mrtd struct{ h hash.Hash }

func (m mrtd) record(op string, gpa uint64) {
	var b [128]byte
	copy(b[:], op)
	binary.LittleEndian.PutUint64(b[16:], gpa)
	m.h.Write(b[:])
}

func (m mrtd) add(s TDVFSection) {
	for off := uint64(0); off < s.Size; off += 4096 {
		m.record("MEM.PAGE.ADD", s.GPA+off)
	}
}

func (m mrtd) extend(s TDVFSection, page []byte, off uint64) {
	for c := uint64(0); c < 4096; c += 256 {
		m.record("MR.EXTEND", s.GPA+off+c)
		m.h.Write(page[c : c+256])
	}
}

// page is the 4 KiB of s at off: its bytes from the image, then zeros.
func (s TDVFSection) page(off uint64, buf []byte) []byte {
	clear(buf)
	if off < uint64(len(s.Data)) {
		copy(buf, s.Data[off:])
	}
	return buf
}

// MRTD is the TD's build-time measurement for a TD launched from t: every
// section's pages added (TD_HOB and TEMP_MEM as zeros; PERM_MEM is
// accepted later by the guest and not added), and the contents of those
// marked MR.EXTEND (the BFV) measured, in the order given. The TD HOB's
// contents, which the host writes, are not measured.
func (t *TDVF) MRTD(order TDXOrder) [48]byte {
	m := mrtd{sha512.New384()}
	buf := make([]byte, 4096)
	added := func(s TDVFSection) bool { return s.Kind != TDVFPermMem }
	for _, s := range t.Sections {
		if !added(s) {
			continue
		}
		if order == TDXTwoPass {
			m.add(s)
			continue
		}
		for off := uint64(0); off < s.Size; off += 4096 {
			m.record("MEM.PAGE.ADD", s.GPA+off)
			if s.ExtendMR {
				m.extend(s, s.page(off, buf), off)
			}
		}
	}
	if order == TDXTwoPass {
		for _, s := range t.Sections {
			if !added(s) || !s.ExtendMR {
				continue
			}
			for off := uint64(0); off < s.Size; off += 4096 {
				m.extend(s, s.page(off, buf), off)
			}
		}
	}
	var d [48]byte
	copy(d[:], m.h.Sum(nil))
	return d
}
