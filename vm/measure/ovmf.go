// Package measure computes a confidential VM's expected launch digest from
// its inputs, before the VM exists, so that a policy can pin the VM and not
// only the bundle it runs: the SEV-SNP MEASUREMENT of OVMF, the direct-boot
// kernel, initrd and command line (through the SEV hashes table) and the
// vCPUs' initial state (VMSAs), as AMD's SNP launch procedure (SNP firmware
// ABI, PAGE_INFO of SNP_LAUNCH_UPDATE) and QEMU produce it and
// virtee/sev-snp-measure computes it.
//
// Inputs are bytes: the package reads no file, and a firmware image it
// cannot read is an error (E1078 firmware-invalid), never a digest of
// something else.
package measure

import (
	"bytes"
	"encoding/binary"

	"github.com/ampoule-run/ampoule/errcode"
)

// The GUIDs of OVMF's footer table entries, in their little-endian (on
// disk) byte order.
var (
	guidFooterTable  = guidLE("96b582de-1fb2-45f7-baea-a366c55a082d")
	guidHashTableRV  = guidLE("7255371f-3a3b-4b04-927b-1da6efa8d454")
	guidSEVESReset   = guidLE("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
	guidSEVMetadata  = guidLE("dc886566-984a-4798-a75e-5585a7bf67cc")
	guidHashTable    = guidLE("9438d606-4f22-4cc9-b479-a793d411fd21")
	guidHashKernel   = guidLE("4de79437-abd2-427f-b835-d5b172d2045b")
	guidHashInitrd   = guidLE("44baf731-3a2f-4bd7-9af1-41e29169781d")
	guidHashCmdline  = guidLE("97d02dd8-bd20-4c94-aa78-e7714d36ab2a")
	maxFirmwareBytes = 64 << 20
)

// The kinds of OVMF's SEV metadata sections (edk2
// OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm).
const (
	sectionSecMem       = 1
	sectionSecrets      = 2
	sectionCPUID        = 3
	sectionSVSMCAA      = 4
	sectionKernelHashes = 0x10
)

// section is one SEV metadata section: memory the launch measures in a way
// its kind says.
type section struct {
	GPA, Size, Kind uint32
}

// OVMF is a firmware image as the SNP launch sees it: mapped to end at
// 4 GiB, with its footer table and SEV metadata sections.
type OVMF struct {
	data     []byte
	table    map[[16]byte][]byte
	sections []section
}

// ParseOVMF reads a firmware image's footer table and SEV metadata. An
// image without the table is accepted (it has no sections and no SEV-ES
// reset vector, so only a one-vCPU launch can be measured); a table or
// metadata that is malformed is E1078.
func ParseOVMF(data []byte) (*OVMF, error) {
	if len(data) == 0 || len(data)%4096 != 0 || len(data) > maxFirmwareBytes {
		return nil, invalid("the firmware is %d bytes, not a whole number of 4 KiB pages up to 64 MiB", len(data))
	}
	o := &OVMF{data: data, table: map[[16]byte][]byte{}}
	const hdr = 18 // u16 size, GUID
	start := len(data) - 32 - hdr
	var g [16]byte
	copy(g[:], data[start+2:start+hdr])
	if g != guidFooterTable {
		return o, nil
	}
	size := int(binary.LittleEndian.Uint16(data[start:]))
	if size < hdr || size-hdr > start {
		return nil, invalid("the firmware's footer table says it is %d bytes", size)
	}
	table := data[start-(size-hdr) : start]
	for len(table) >= hdr {
		e := table[len(table)-hdr:]
		n := int(binary.LittleEndian.Uint16(e))
		if n < hdr || n > len(table) {
			return nil, invalid("a firmware footer table entry says it is %d bytes", n)
		}
		copy(g[:], e[2:])
		o.table[g] = table[len(table)-n : len(table)-hdr]
		table = table[:len(table)-n]
	}
	return o, o.parseMetadata()
}

func (o *OVMF) parseMetadata() error {
	off, ok := o.u32(guidSEVMetadata)
	if !ok {
		return nil
	}
	start := len(o.data) - int(off)
	if off == 0 || int(off) > len(o.data) || start+16 > len(o.data) {
		return invalid("the SEV metadata's offset %#x is outside the firmware", off)
	}
	h := o.data[start:]
	size, version, n := binary.LittleEndian.Uint32(h[4:]), binary.LittleEndian.Uint32(h[8:]), binary.LittleEndian.Uint32(h[12:])
	if !bytes.Equal(h[:4], []byte("ASEV")) || version != 1 {
		return invalid("the SEV metadata has signature %q version %d, not ASEV version 1", h[:4], version)
	}
	if size < 16 || uint64(size) > uint64(len(h)) || uint64(n)*12 > uint64(size-16) {
		return invalid("the SEV metadata's %d sections do not fit its %d bytes", n, size)
	}
	for i := range int(n) {
		d := h[16+12*i:]
		s := section{binary.LittleEndian.Uint32(d), binary.LittleEndian.Uint32(d[4:]), binary.LittleEndian.Uint32(d[8:])}
		if s.GPA%4096 != 0 || s.Size%4096 != 0 || s.Size == 0 || uint64(s.GPA)+uint64(s.Size) > 1<<32 {
			return invalid("SEV metadata section %d (%#x bytes at %#x) is not whole pages below 4 GiB", i, s.Size, s.GPA)
		}
		switch s.Kind {
		case sectionSecMem, sectionSVSMCAA:
		case sectionSecrets, sectionCPUID, sectionKernelHashes:
			if s.Size != 4096 {
				return invalid("SEV metadata section %d of kind %#x is %#x bytes, not one page", i, s.Kind, s.Size)
			}
		default:
			return invalid("SEV metadata section %d is of unknown kind %#x", i, s.Kind)
		}
		o.sections = append(o.sections, s)
	}
	return nil
}

// GPA is the guest-physical address the firmware is mapped at (it ends at
// 4 GiB).
func (o *OVMF) GPA() uint64 { return 1<<32 - uint64(len(o.data)) }

// u32 is the little-endian number a footer table entry starts with.
func (o *OVMF) u32(g [16]byte) (uint32, bool) {
	e, ok := o.table[g]
	if !ok || len(e) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(e), true
}

func (o *OVMF) has(kind uint32) bool {
	for _, s := range o.sections {
		if s.Kind == kind {
			return true
		}
	}
	return false
}

func invalid(format string, args ...any) error {
	return errcode.Errorf(errcode.FirmwareInvalid, format, args...).Host()
}

// guidLE is a GUID's bytes as EFI stores them (the first three fields
// little-endian). s is a literal of this package.
func guidLE(s string) [16]byte {
	var raw [16]byte
	j := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		raw[j/2] |= unhex(s[i]) << (4 * (1 - j%2))
		j++
	}
	return [16]byte{raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6],
		raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]}
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}
