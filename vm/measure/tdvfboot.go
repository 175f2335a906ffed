package measure

import (
	"bytes"
	"encoding/binary"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// guidLZMASection is edk2's LZMA custom decompression GUID, which names
// the GUID-defined section OVMF's compressed firmware volume is in.
var guidLZMASection = guidLE("ee4e5898-3914-4259-9d6e-dc7bd79403cf")

// guidTdTcg2Dxe is the FILE_GUID of edk2's TdTcg2Dxe (OvmfPkg/IntelTdx,
// then OvmfPkg/Tcg), the driver that installs EFI_CC_MEASUREMENT_PROTOCOL
// and extends a TD's boot into its RTMRs.
var guidTdTcg2Dxe = guidLE("f062221e-c607-44c2-b0b4-c3886331d351")

// Bounds on what MeasuresBoot decompresses: OVMF has one compressed
// volume of some 14 MiB, its dictionary a few MiB.
const (
	maxLZMASections   = 8
	maxLZMADict       = 64 << 20
	maxLZMADecompress = 64 << 20
)

// TDVFMeasuresBoot says whether firmware, a TDVF, measures the TD's boot
// into RTMR0 to RTMR2: whether it carries edk2's TdTcg2Dxe, as a file of
// a firmware volume or of one OVMF compressed with LZMA. edk2 builds it
// into OvmfPkg/IntelTdx, and into OvmfPkgX64 only with
// CC_MEASUREMENT_ENABLE (edk2-stable202302 and later), which Debian 12's
// OVMF.fd (2022.11) lacks: under TDX that firmware extends no RTMR, and
// nothing of the kernel, initramfs or command line is measured. A
// compressed section that does not decompress within the bounds is
// taken as not holding it.
func TDVFMeasuresBoot(firmware []byte) bool { return firmwareHolds(firmware, guidTdTcg2Dxe) }

// firmwareHolds says whether guid is in firmware, or in one of its LZMA
// sections decompressed.
func firmwareHolds(firmware []byte, guid [16]byte) bool {
	if bytes.Contains(firmware, guid[:]) {
		return true
	}
	rest, n := firmware, 0
	for n < maxLZMASections {
		i := bytes.Index(rest, guidLZMASection[:])
		if i < 0 {
			return false
		}
		// EFI_GUID_DEFINED_SECTION: a 24-bit size and a type (0x02)
		// before the GUID, then its data's offset from the section's
		// start and its attributes.
		if i >= 4 && i+20 <= len(rest) && rest[i-1] == 0x02 {
			start := i - 4
			size := int(rest[start]) | int(rest[start+1])<<8 | int(rest[start+2])<<16
			data := int(binary.LittleEndian.Uint16(rest[i+16:]))
			if data >= 24 && data < size && start+size <= len(rest) && lzmaHolds(rest[start+data:start+size], guid) {
				return true
			}
			n++
		}
		rest = rest[i+16:]
	}
	return false
}

// lzmaHolds decompresses an LZMA stream, bounded, and looks for guid in
// it.
func lzmaHolds(stream []byte, guid [16]byte) bool {
	if len(stream) < lzma.HeaderLen || binary.LittleEndian.Uint32(stream[1:]) > maxLZMADict {
		return false
	}
	r, err := lzma.ReaderConfig{DictCap: maxLZMADict}.NewReader(bytes.NewReader(stream))
	if err != nil {
		return false
	}
	// Whatever decompressed before an error is still searched: a GUID
	// found there is in the firmware.
	out, _ := io.ReadAll(io.LimitReader(r, maxLZMADecompress))
	return bytes.Contains(out, guid[:])
}
