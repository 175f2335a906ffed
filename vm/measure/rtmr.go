package measure

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"slices"
	"unicode/utf16"

	"github.com/ampoule-run/ampoule/errcode"
)

// TDXBoot is what a TD booted directly by QEMU (-kernel, -initrd,
// -append) measures after its TDVF: the kernel as QEMU hands it to the
// firmware, the initrd and the command line, and the memory size that
// decides where QEMU places the initrd (which it writes into the
// kernel's setup header, so into the kernel's digest).
type TDXBoot struct {
	Kernel, Initrd []byte
	Cmdline        string
	// MemoryBytes is the TD's memory (-m).
	MemoryBytes uint64
}

// RTMREvent is one event a TD's boot extends into an RTMR: its register
// (0 to 3), what it is, and the SHA-384 digest extended.
type RTMREvent struct {
	RTMR   int
	Name   string
	Digest [48]byte
}

// The EV_EFI_ACTION strings edk2 measures (MdePkg's
// UefiTcgPlatform.h), without a terminating NUL.
const (
	actionCallingApplication = "Calling EFI Application from Boot Option"
	actionExitBootServices   = "Exit Boot Services Invocation"
	actionExitBootSucceeded  = "Exit Boot Services Returned with Success"
)

// Events are the events the boot extends into RTMR1 and RTMR2, in the
// order the boot extends them,
// under a TDVF that measures the boot (edk2's TdTcg2Dxe, the
// EFI_CC_MEASUREMENT_PROTOCOL) and a kernel whose EFI stub measures into
// it (see KernelMeasuresIntoRTMRs):
//
//	RTMR1: the kernel's PE image (EV_EFI_BOOT_SERVICES_APPLICATION, its
//	       Authenticode SHA-384 as QEMU patched it), at LoadImage;
//	       "Calling EFI Application from Boot Option" and the separator,
//	       at ReadyToBoot;
//	RTMR2: the stub's tagged events: the LoadOptions OVMF hands the
//	       kernel (the command line and " initrd=initrd", UTF-16 with
//	       its NUL), then the initrd's bytes;
//	RTMR1: the two ExitBootServices actions.
//
// TdTcg2Dxe maps PCR 4 and 5 to RTMR1 and PCR 9 to RTMR2, and extends
// one separator into RTMR1 where a TPM has one in each of PCR 0 to 7.
// RTMR0 (the TD HOB, the CFV's variables, QEMU's ACPI tables, the boot
// variables) is not among them: it depends on QEMU's version and
// machine, not on these inputs.
func (b TDXBoot) Events() ([]RTMREvent, error) {
	patched, err := QEMUPatchKernel(b.Kernel, len(b.Initrd), b.MemoryBytes)
	if err != nil {
		return nil, err
	}
	kernel, err := AuthenticodeSHA384(patched)
	if err != nil {
		return nil, err
	}
	return []RTMREvent{
		{1, "EV_EFI_BOOT_SERVICES_APPLICATION the kernel (Authenticode, as QEMU patched it)", kernel},
		{1, "EV_EFI_ACTION " + actionCallingApplication, sha512.Sum384([]byte(actionCallingApplication))},
		{1, "EV_SEPARATOR", sha512.Sum384(make([]byte, 4))},
		{2, "EV_EVENT_TAG LOADED_IMAGE::LoadOptions (the command line)", LoadOptionsDigest(b.Cmdline, len(b.Initrd) > 0)},
		{2, "EV_EVENT_TAG Linux initrd", sha512.Sum384(b.Initrd)},
		{1, "EV_EFI_ACTION " + actionExitBootServices, sha512.Sum384([]byte(actionExitBootServices))},
		{1, "EV_EFI_ACTION " + actionExitBootSucceeded, sha512.Sum384([]byte(actionExitBootSucceeded))},
	}, nil
}

// LoadOptionsDigest is the SHA-384 of the LoadOptions OVMF's QEMU loader
// gives a kernel booted with command line cmdline: UTF-16LE, with
// " initrd=initrd" appended when there is an initrd, and a NUL.
func LoadOptionsDigest(cmdline string, initrd bool) [48]byte {
	if initrd {
		cmdline += " initrd=initrd"
	}
	u := utf16.Encode([]rune(cmdline + "\x00"))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return sha512.Sum384(b)
}

// ReplayRTMR is RTMR rtmr after events, from zero: each of its events'
// digests extended in order, RTMR = SHA-384(RTMR ‖ digest).
func ReplayRTMR(events []RTMREvent, rtmr int) [48]byte {
	var r [48]byte
	for _, e := range events {
		if e.RTMR == rtmr {
			r = sha512.Sum384(append(r[:], e.Digest[:]...))
		}
	}
	return r
}

// ccMeasurementGUID is the first field of EFI_CC_MEASUREMENT_PROTOCOL_GUID
// (96751a3d-72f4-41a6-a794-ed5d0e67ae6b), little-endian: the EFI stub
// builds the GUID from immediates, so this is what is in its code.
var ccMeasurementGUID = []byte{0x3d, 0x1a, 0x75, 0x96}

// KernelMeasuresIntoRTMRs says whether kernel's EFI stub can measure the
// command line and initrd into RTMR2: whether its image holds the first
// field of EFI_CC_MEASUREMENT_PROTOCOL_GUID, which Linux's stub asks for
// since 6.9 (where it finds no TCG2 protocol). A stub without it (Debian
// 12's 6.1) measures them only into a TPM, so under TDX RTMR2 stays zero
// and pins neither. Four bytes can occur by chance in the compressed
// kernel, so true says the stub may measure them, false that it cannot.
func KernelMeasuresIntoRTMRs(kernel []byte) bool {
	return bytes.Contains(kernel, ccMeasurementGUID)
}

// kernelInvalid is E1079 with what is wrong.
func kernelInvalid(format string, args ...any) error {
	return errcode.Errorf(errcode.KernelInvalid, format, args...).Host()
}

// Linux's x86 boot protocol: the setup header's fields QEMU reads and
// writes (Documentation/arch/x86/boot.rst).
const (
	hdrSignature    = 0x202 // "HdrS"
	hdrVersion      = 0x206
	hdrTypeOfLoader = 0x210
	hdrLoadFlags    = 0x211
	hdrRamdiskImage = 0x218
	hdrRamdiskSize  = 0x21c
	hdrHeapEndPtr   = 0x224
	hdrCmdLinePtr   = 0x228
	hdrInitrdAddMax = 0x22c
	hdrXLoadFlags   = 0x236

	loadedHigh         = 0x01
	canUseHeap         = 0x80
	xlfCanBeAbove4G    = 0x02
	qemuLoaderType     = 0xb0
	qemuRealAddr       = 0x10000
	qemuCmdlineAddr    = 0x20000
	qemuACPIDataSize   = 0x20000 + 0x8000
	q35LowMemSplit     = 0xb0000000
	q35LowMemLargeRAM  = 0x80000000
	defaultInitrdLimit = 0x37ffffff
)

// QEMUPatchKernel is kernel as QEMU's x86 direct boot (x86_load_linux,
// q35) serves it to the firmware through fw_cfg: its setup header says
// QEMU loaded it, where its command line and heap are, and where the
// initrd of initrdSize bytes lies, below the top of the low memory of a
// machine with memBytes of RAM less QEMU's ACPI data. A kernel that is
// not a bzImage of boot protocol 2.06 or later loaded high, or an initrd
// that does not fit, is E1079.
func QEMUPatchKernel(kernel []byte, initrdSize int, memBytes uint64) ([]byte, error) {
	if len(kernel) < 0x1000 || string(kernel[hdrSignature:hdrSignature+4]) != "HdrS" {
		return nil, kernelInvalid("the kernel is not a Linux bzImage (no HdrS setup header)")
	}
	le := binary.LittleEndian
	k := slices.Clone(kernel)
	protocol := le.Uint16(k[hdrVersion:])
	if protocol < 0x206 || k[hdrLoadFlags]&loadedHigh == 0 {
		return nil, kernelInvalid("the kernel's boot protocol %d.%02d (loaded %s) is older than QEMU's direct boot of an EFI kernel needs (2.06, loaded high)",
			protocol>>8, protocol&0xff, map[bool]string{true: "high", false: "low"}[k[hdrLoadFlags]&loadedHigh != 0])
	}
	k[hdrTypeOfLoader] = qemuLoaderType
	k[hdrLoadFlags] |= canUseHeap
	le.PutUint32(k[hdrHeapEndPtr:], qemuCmdlineAddr-qemuRealAddr-0x200)
	le.PutUint32(k[hdrCmdLinePtr:], qemuCmdlineAddr)
	if initrdSize == 0 {
		return k, nil
	}
	var limit uint64
	switch {
	case protocol >= 0x20c && le.Uint16(k[hdrXLoadFlags:])&xlfCanBeAbove4G != 0:
		limit = 0xffffffff
	default:
		if limit = uint64(le.Uint32(k[hdrInitrdAddMax:])); limit == 0 {
			limit = defaultInitrdLimit
		}
	}
	lowmem := uint64(q35LowMemSplit)
	if memBytes >= q35LowMemSplit {
		lowmem = q35LowMemLargeRAM
	}
	below4G := min(memBytes, lowmem)
	if below4G <= qemuACPIDataSize {
		return nil, kernelInvalid("%d bytes of memory leave no room below QEMU's ACPI data", memBytes)
	}
	if limit >= below4G-qemuACPIDataSize {
		limit = below4G - qemuACPIDataSize - 1
	}
	if uint64(initrdSize) >= limit {
		return nil, kernelInvalid("the initrd's %d bytes do not fit below %#x in %d bytes of memory", initrdSize, limit, memBytes)
	}
	le.PutUint32(k[hdrRamdiskImage:], uint32((limit-uint64(initrdSize))&^4095))
	le.PutUint32(k[hdrRamdiskSize:], uint32(initrdSize))
	return k, nil
}

// PE/COFF offsets (the Microsoft PE format, "Optional Header").
const (
	peOffsetField    = 0x3c
	peSecurityDir    = 4
	peOptionalPE32   = 0x10b
	peOptionalPE32P  = 0x20b
	peSectionHdrSize = 40
)

// AuthenticodeSHA384 is the Authenticode SHA-384 digest of a PE/COFF
// image, as edk2 measures a loaded image (DxeTpm2MeasureBootLib, Tcg2Dxe's
// MeasurePeImageAndExtend): the headers less the checksum and the
// certificate table's entry, the sections in file order, then what
// follows them less the certificate table. An image that is not PE/COFF,
// or whose sections or certificate table lie outside it, is E1079.
func AuthenticodeSHA384(pe []byte) ([48]byte, error) {
	var d [48]byte
	sum, err := authenticode(sha512.New384(), pe)
	copy(d[:], sum)
	return d, err
}

// authenticode is pe's Authenticode digest under h (AuthenticodeSHA384).
func authenticode(h hash.Hash, pe []byte) ([]byte, error) {
	var d []byte
	le := binary.LittleEndian
	if len(pe) < peOffsetField+4 || pe[0] != 'M' || pe[1] != 'Z' {
		return d, kernelInvalid("the kernel is not a PE/COFF image (no MZ header): QEMU's firmware boots only an EFI-stub kernel")
	}
	nt := uint64(le.Uint32(pe[peOffsetField:]))
	if nt+24 > uint64(len(pe)) || string(pe[nt:nt+4]) != "PE\x00\x00" {
		return d, kernelInvalid("the kernel's PE header at %#x is missing or outside it", nt)
	}
	sections, optSize := uint64(le.Uint16(pe[nt+6:])), uint64(le.Uint16(pe[nt+20:]))
	opt := nt + 24
	if opt+optSize > uint64(len(pe)) || optSize < 2 {
		return d, kernelInvalid("the kernel's optional header is outside it")
	}
	var dirCount, dirs uint64
	switch le.Uint16(pe[opt:]) {
	case peOptionalPE32:
		dirCount, dirs = 92, 96
	case peOptionalPE32P:
		dirCount, dirs = 108, 112
	default:
		return d, kernelInvalid("the kernel's optional header has unknown magic %#x", le.Uint16(pe[opt:]))
	}
	if dirs > optSize || dirCount+4 > optSize {
		return d, kernelInvalid("the kernel's optional header is %d bytes, too short for its data directories", optSize)
	}
	headers, numDirs := uint64(le.Uint32(pe[opt+60:])), uint64(le.Uint32(pe[opt+dirCount:]))
	checksum, certEntry := opt+64, opt+dirs+8*peSecurityDir
	if headers > uint64(len(pe)) || headers < checksum+4 || numDirs > peSecurityDir && (certEntry+8 > opt+optSize || headers < certEntry+8) {
		return d, kernelInvalid("the kernel's headers (%#x bytes) are not within it", headers)
	}
	h.Write(pe[:checksum])
	var certSize uint64
	if numDirs <= peSecurityDir {
		h.Write(pe[checksum+4 : headers])
	} else {
		h.Write(pe[checksum+4 : certEntry])
		h.Write(pe[certEntry+8 : headers])
		certSize = uint64(le.Uint32(pe[certEntry+4:]))
	}
	table := opt + optSize
	if table+sections*peSectionHdrSize > uint64(len(pe)) {
		return d, kernelInvalid("the kernel's %d section headers are outside it", sections)
	}
	type span struct{ off, size uint64 }
	var spans []span
	for i := range sections {
		s := pe[table+i*peSectionHdrSize:]
		if size := uint64(le.Uint32(s[16:])); size != 0 {
			spans = append(spans, span{uint64(le.Uint32(s[20:])), size})
		}
	}
	slices.SortStableFunc(spans, func(a, b span) int { return int(int64(a.off) - int64(b.off)) })
	hashed := headers
	for _, s := range spans {
		if s.off+s.size > uint64(len(pe)) {
			return d, kernelInvalid("a section of the kernel (%#x bytes at %#x) is outside it", s.size, s.off)
		}
		h.Write(pe[s.off : s.off+s.size])
		hashed += s.size
	}
	if size := uint64(len(pe)); size > hashed {
		if size < hashed+certSize {
			return d, kernelInvalid("the kernel's certificate table (%d bytes) is larger than what follows its sections", certSize)
		}
		h.Write(pe[hashed : size-certSize])
	}
	return h.Sum(nil), nil
}
