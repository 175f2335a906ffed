package measure

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"sort"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
)

// GuestFeaturesSNP is the VMSA's SEV_FEATURES with only SNPActive set:
// what QEMU launches an sev-snp-guest with unless told otherwise, and
// sev-snp-measure's default.
const GuestFeaturesSNP = 0x1

// SNP is what an SEV-SNP launch measures.
type SNP struct {
	// Firmware is the OVMF image (-bios), mapped to end at 4 GiB.
	Firmware *OVMF
	// DirectBoot measures Kernel, Initrd and Cmdline through the SEV hashes
	// table (QEMU's sev-snp-guest kernel-hashes=on); without it the
	// table's page is measured as zeros.
	DirectBoot bool
	Kernel     []byte
	Initrd     []byte
	// Cmdline is -append's text (QEMU hashes it with its NUL).
	Cmdline string
	// VCPUs is the number of vCPUs (-smp), each measured as a VMSA page.
	VCPUs int
	// VCPUSig is CPUID 1 EAX of the vCPU type (VCPUSig gives it by name),
	// which the VMSA carries in RDX.
	VCPUSig uint32
	// GuestFeatures is the VMSA's SEV_FEATURES (GuestFeaturesSNP unless
	// the VM is launched with others).
	GuestFeatures uint64
}

// pageInfo kinds of SNP_LAUNCH_UPDATE (SNP firmware ABI, PAGE_INFO).
const (
	pageNormal  = 0x01
	pageVMSA    = 0x02
	pageZero    = 0x03
	pageSecrets = 0x05
	pageCPUID   = 0x06
	// vmsaGPA is where the launch records a VMSA page: (u64)(-1),
	// page-aligned, bits above 51 clear.
	vmsaGPA = 0xFFFFFFFFF000
	// bspEIP is the boot processor's reset vector.
	bspEIP = 0xfffffff0
)

// launchDigest is the SNP launch digest as it grows, page by page.
type launchDigest [48]byte

func (ld *launchDigest) update(kind byte, gpa uint64, contents [48]byte) {
	var info [0x70]byte
	copy(info[:], ld[:])
	copy(info[48:], contents[:])
	binary.LittleEndian.PutUint16(info[96:], 0x70)
	info[98] = kind
	binary.LittleEndian.PutUint64(info[104:], gpa)
	*ld = sha512.Sum384(info[:])
}

func (ld *launchDigest) normal(gpa uint64, data []byte) {
	for off := 0; off < len(data); off += 4096 {
		ld.update(pageNormal, gpa+uint64(off), sha512.Sum384(data[off:off+4096]))
	}
}

func (ld *launchDigest) zero(gpa uint64, size uint32) {
	for off := uint64(0); off < uint64(size); off += 4096 {
		ld.update(pageZero, gpa+off, [48]byte{})
	}
}

// LaunchDigest is the SEV-SNP MEASUREMENT a VM launched from s reports:
// the firmware's pages, then its SEV metadata sections in order (zero
// pages, the secrets and CPUID pages, the SEV hashes table of kernel,
// initrd and command line), then one VMSA per vCPU. A direct boot on a
// firmware without the kernel-hashes section, or more than one vCPU on a
// firmware without an SEV-ES reset vector, is E1078: QEMU would refuse or
// the guest would not measure what it boots.
func LaunchDigest(s SNP) ([48]byte, error) {
	o := s.Firmware
	if o == nil {
		return [48]byte{}, invalid("no firmware")
	}
	if s.VCPUs < 1 || s.VCPUs > 512 {
		return [48]byte{}, errcode.Errorf(errcode.Usage, "--vcpus %d is not 1 to 512", s.VCPUs).Host()
	}
	if s.DirectBoot && !o.has(sectionKernelHashes) {
		return [48]byte{}, invalid("the firmware has no SEV kernel-hashes section, so it cannot measure a direct-boot kernel: use an OVMF built from OvmfPkg/AmdSev (AMDSEV.fd)")
	}
	var ld launchDigest
	ld.normal(o.GPA(), o.data)
	for _, sec := range o.sections {
		gpa := uint64(sec.GPA)
		switch sec.Kind {
		case sectionSecMem, sectionSVSMCAA:
			ld.zero(gpa, sec.Size)
		case sectionSecrets:
			ld.update(pageSecrets, gpa, [48]byte{})
		case sectionCPUID:
			ld.update(pageCPUID, gpa, [48]byte{})
		case sectionKernelHashes:
			if !s.DirectBoot {
				ld.zero(gpa, sec.Size)
				continue
			}
			page, err := hashesPage(o, s)
			if err != nil {
				return [48]byte{}, err
			}
			ld.normal(gpa, page)
		}
	}
	ap, hasAP := o.u32(guidSEVESReset)
	if s.VCPUs > 1 && (!hasAP || ap == 0) {
		return [48]byte{}, invalid("the firmware has no SEV-ES reset vector for its application processors, so only one vCPU can launch")
	}
	bsp := vmsa(bspEIP, s)
	for i := range s.VCPUs {
		page := bsp
		if i > 0 {
			page = vmsa(ap, s)
		}
		ld.update(pageVMSA, vmsaGPA, sha512.Sum384(page[:]))
	}
	return ld, nil
}

// hashesPage is the page holding QEMU's SEV hashes table (the
// SEV_HASH_TABLE_RV entry says where in it): a header GUID and length,
// then the command line's, initrd's and kernel's SHA-256 entries, padded
// to 16 bytes.
func hashesPage(o *OVMF, s SNP) ([]byte, error) {
	at, ok := o.u32(guidHashTableRV)
	if !ok || at == 0 {
		return nil, invalid("the firmware has a kernel-hashes section but no SEV hash table address")
	}
	const entry, table = 16 + 2 + 32, 16 + 2 + 3*(16+2+32)
	off := int(at & 0xfff)
	if off+(table+15)&^15 > 4096 {
		return nil, invalid("the SEV hash table at %#x crosses its page", at)
	}
	page := make([]byte, 4096)
	t := page[off:]
	copy(t, guidHashTable[:])
	binary.LittleEndian.PutUint16(t[16:], table)
	for i, e := range []struct {
		guid [16]byte
		sum  [32]byte
	}{
		{guidHashCmdline, sha256.Sum256(append([]byte(s.Cmdline), 0))},
		{guidHashInitrd, sha256.Sum256(s.Initrd)},
		{guidHashKernel, sha256.Sum256(s.Kernel)},
	} {
		b := t[18+i*entry:]
		copy(b, e.guid[:])
		binary.LittleEndian.PutUint16(b[16:], entry)
		copy(b[18:], e.sum[:])
	}
	return page, nil
}

// vmsa is a vCPU's initial save area as QEMU and KVM set it for an SNP
// launch (AMD APM vol. 2, table B-4; struct sev_es_save_area): real mode
// at the reset vector eip.
func vmsa(eip uint32, s SNP) [4096]byte {
	var p [4096]byte
	le16, le32, le64 := binary.LittleEndian.PutUint16, binary.LittleEndian.PutUint32, binary.LittleEndian.PutUint64
	seg := func(at int, selector, attrib uint16, limit uint32, base uint64) {
		le16(p[at:], selector)
		le16(p[at+2:], attrib)
		le32(p[at+4:], limit)
		le64(p[at+8:], base)
	}
	seg(0x00, 0, 0x93, 0xffff, 0)                           // es
	seg(0x10, 0xf000, 0x9b, 0xffff, uint64(eip&0xffff0000)) // cs
	seg(0x20, 0, 0x93, 0xffff, 0)                           // ss
	seg(0x30, 0, 0x93, 0xffff, 0)                           // ds
	seg(0x40, 0, 0x93, 0xffff, 0)                           // fs
	seg(0x50, 0, 0x93, 0xffff, 0)                           // gs
	seg(0x60, 0, 0, 0xffff, 0)                              // gdtr
	seg(0x70, 0, 0x82, 0xffff, 0)                           // ldtr
	seg(0x80, 0, 0, 0xffff, 0)                              // idtr
	seg(0x90, 0, 0x8b, 0xffff, 0)                           // tr
	le64(p[0xd0:], 0x1000)                                  // efer: SVME
	le64(p[0x148:], 0x40)                                   // cr4: MCE
	le64(p[0x158:], 0x10)                                   // cr0: ET
	le64(p[0x160:], 0x400)                                  // dr7
	le64(p[0x168:], 0xffff0ff0)                             // dr6
	le64(p[0x170:], 0x2)                                    // rflags
	le64(p[0x178:], uint64(eip&0xffff))                     // rip
	le64(p[0x268:], 0x7040600070406)                        // g_pat
	le64(p[0x310:], uint64(s.VCPUSig))                      // rdx
	le64(p[0x3b0:], s.GuestFeatures)                        // sev_features
	le64(p[0x3e8:], 0x1)                                    // xcr0
	le32(p[0x408:], 0x1f80)                                 // mxcsr
	le16(p[0x410:], 0x37f)                                  // x87 fcw
	return p
}

// vcpuSig is CPUID 1 EAX for a family, model and stepping (AMD's CPUID
// specification, Fn0000_0001_EAX).
func vcpuSig(family, model, stepping uint32) uint32 {
	lo, hi := family, uint32(0)
	if family > 0xf {
		lo, hi = 0xf, (family-0xf)&0xff
	}
	return hi<<20 | (model>>4&0xf)<<16 | lo<<8 | (model&0xf)<<4 | stepping&0xf
}

// vcpuTypes are QEMU's AMD CPU models (builtin_x86_defs) by family,
// model and stepping.
var vcpuTypes = map[string][3]uint32{
	"EPYC": {23, 1, 2}, "EPYC-v1": {23, 1, 2}, "EPYC-v2": {23, 1, 2}, "EPYC-IBPB": {23, 1, 2}, "EPYC-v3": {23, 1, 2}, "EPYC-v4": {23, 1, 2},
	"EPYC-Rome": {23, 49, 0}, "EPYC-Rome-v1": {23, 49, 0}, "EPYC-Rome-v2": {23, 49, 0}, "EPYC-Rome-v3": {23, 49, 0},
	"EPYC-Milan": {25, 1, 1}, "EPYC-Milan-v1": {25, 1, 1}, "EPYC-Milan-v2": {25, 1, 1},
	"EPYC-Genoa": {25, 17, 0}, "EPYC-Genoa-v1": {25, 17, 0},
	"EPYC-Turin": {26, 0, 0},
}

// VCPUSig is the CPUID signature of a QEMU vCPU type (-cpu NAME); a name
// it does not know is E1001 with the names it does.
func VCPUSig(name string) (uint32, error) {
	fms, ok := vcpuTypes[name]
	if !ok {
		names := make([]string, 0, len(vcpuTypes))
		for n := range vcpuTypes {
			names = append(names, n)
		}
		sort.Strings(names)
		return 0, errcode.Errorf(errcode.Usage, "--vcpu-type %q is not an AMD vCPU type QEMU knows", name).
			WithHint("one of " + strings.Join(names, ", ")).Host()
	}
	return vcpuSig(fms[0], fms[1], fms[2]), nil
}
