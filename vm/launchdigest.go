package vm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/vm/initdata"
	"github.com/ampoule-run/ampoule/vm/measure"
	"github.com/pelletier/go-toml/v2"
)

// MeasurementsFile is the guest directory's record of its expected launch
// measurements, which 'launch policy new --vm DIR' pins.
const MeasurementsFile = "measurements.toml"

// The vCPUs a VM launches with unless told otherwise: QEMUConfig's and
// MeasureConfig's defaults agree, so a measured guest is the one run
// boots.
const (
	DefaultVCPUs    = 2
	DefaultVCPUType = "EPYC-v4"
	// DefaultMemoryMiB is the VM's memory: QEMU places the initramfs at
	// its top, in the kernel's setup header, so a TD's RTMR1 depends on it.
	DefaultMemoryMiB = 1024
)

// MeasureConfig is what an SEV-SNP or TDX launch measures beside the
// guest: at least one of the firmwares must be named.
type MeasureConfig struct {
	// Firmware is the SEV-SNP OVMF (OvmfPkg/AmdSev) QEMU loads (-bios).
	Firmware string
	// TDXFirmware is the TDVF (an OVMF with TDVF metadata) QEMU loads for
	// a TD, whose MRTD is measured.
	TDXFirmware string
	// VCPUs (-smp) and VCPUType (-cpu): DefaultVCPUs and DefaultVCPUType
	// when zero.
	VCPUs    int
	VCPUType string
	// MemoryMiB is the TD's memory (-m): DefaultMemoryMiB when zero.
	MemoryMiB int
}

// LaunchMeasurements are a guest's expected launch measurements.
type LaunchMeasurements struct {
	// SNPLaunchMeasurements are the SEV-SNP MEASUREMENTs accepted (hex).
	SNPLaunchMeasurements []string `toml:"snp_launch_measurements,omitempty"`
	// Firmware is the SHA-256 of the OVMF measured; VCPUs and VCPUType
	// the vCPUs: the inputs a reader needs to compute them again.
	Firmware string `toml:"firmware_sha256,omitempty"`
	VCPUs    int    `toml:"vcpus"`
	VCPUType string `toml:"vcpu_type"`
	// TDXMRTDs are the TDX MRTDs accepted (hex): the TDVF's pages added
	// and measured page by page (upstream KVM), then in two passes (all
	// pages added first), the two orders hosts use. TDXFirmware is the
	// SHA-256 of the TDVF measured.
	TDXMRTDs    []string `toml:"tdx_mrtds,omitempty"`
	TDXFirmware string   `toml:"tdx_firmware_sha256,omitempty"`
	// TDXMemoryMiB is the TD's memory, which its RTMR1 depends on.
	TDXMemoryMiB int `toml:"tdx_memory_mib,omitempty"`
	// TDXRTMRs are the TD's expected runtime registers, replayed from
	// the events its boot extends.
	TDXRTMRs *TDXRTMRs `toml:"tdx_rtmrs,omitempty"`
}

// TDXRTMRs are a TD's expected RTMRs after its boot: the events the TDVF
// and the kernel's EFI stub extend (measure.TDXBoot.Events), replayed.
type TDXRTMRs struct {
	// RTMR1 (the kernel and the firmware's boot actions) and RTMR2 (the
	// command line and initramfs), hex; an empty one is not pinned, and
	// Unpinned says why, as it says why RTMR0 never is.
	RTMR1    string   `toml:"rtmr1,omitempty"`
	RTMR2    string   `toml:"rtmr2,omitempty"`
	Unpinned []string `toml:"unpinned"`
	// Checked says what the events' digests were checked against.
	Checked string `toml:"checked"`
	// Events are the events replayed, in the order the boot extends them.
	Events []RTMREvent `toml:"events"`
}

// RTMREvent is one event of TDXRTMRs: its register, digest (hex) and what
// it is.
type RTMREvent struct {
	RTMR   int    `toml:"rtmr"`
	Digest string `toml:"digest"`
	Event  string `toml:"event"`
}

// What the RTMRs' events are checked against, and why a register is not
// pinned.
const (
	rtmrsChecked = "each event's digest against the TCG event logs of real boots of QEMU 7.2 with Debian 12's OVMF and Linux 6.1 " +
		"into a software TPM (a committed log, and a booted guest's own in the tests; PCR 4, 5 and 9 get what a TDVF extends into " +
		"RTMR1 and RTMR2); which register each event goes to is edk2's TdTcg2Dxe's, and no TD's quote has checked the values"
	rtmr0Unpinned   = "rtmr0: not computed: the TD HOB, the firmware's variables and QEMU's ACPI tables depend on QEMU's version and machine, not on the guest"
	rtmrsUnmeasured = "rtmr0, rtmr1, rtmr2: the TDVF has no TdTcg2Dxe (edk2's EFI_CC_MEASUREMENT_PROTOCOL; Debian 12's OVMF.fd is built without it): " +
		"under TDX it extends no RTMR, so they stay zero and would pin nothing of the kernel, initramfs or command line"
	rtmr2Unpinned = "rtmr2: the kernel's EFI stub has no EFI_CC_MEASUREMENT_PROTOCOL (Linux before 6.9): under TDX it measures neither " +
		"the initramfs nor the command line, so RTMR2 stays zero and would pin neither"
)

// Measurer measures guests' SEV-SNP launches from one firmware on one
// set of vCPUs, and TDX launches from one TDVF; NewMeasurer checks those
// before any guest is built.
type Measurer struct {
	c        MeasureConfig
	sig      uint32
	ovmf     *measure.OVMF
	firmware [32]byte
	// mrtds are the TDX MRTDs, which depend on the TDVF alone.
	mrtds       []string
	tdxFirmware [32]byte
	// tdvfMeasures says whether the TDVF extends the boot into RTMRs.
	tdvfMeasures bool
}

// NewMeasurer reads and checks c's firmwares and vCPU type: an SEV-SNP
// firmware that cannot measure a direct-boot kernel, or c.VCPUs
// processors, or a TDVF without valid metadata, is E1078; no firmware, or
// a vCPU type QEMU does not have, E1001.
func NewMeasurer(c MeasureConfig) (*Measurer, error) {
	if c.VCPUs == 0 {
		c.VCPUs = DefaultVCPUs
	}
	if c.VCPUType == "" {
		c.VCPUType = DefaultVCPUType
	}
	if c.MemoryMiB == 0 {
		c.MemoryMiB = DefaultMemoryMiB
	}
	if c.Firmware == "" && c.TDXFirmware == "" {
		return nil, errcode.Errorf(errcode.Usage, "measuring a confidential VM's launch needs the firmware it boots").
			WithHint("pass --firmware FILE, the SEV-SNP OVMF (OvmfPkg/AmdSev, AMDSEV.fd) 'launch vm run --backend snp' is given, or --tdx-firmware FILE, the TDVF --backend tdx is given").Host()
	}
	m := &Measurer{c: c}
	if c.TDXFirmware != "" {
		fw, err := readHost(c.TDXFirmware, "the TDX firmware (--tdx-firmware)")
		if err != nil {
			return nil, err
		}
		td, err := measure.ParseTDVF(fw)
		if err != nil {
			return nil, err
		}
		for _, order := range []measure.TDXOrder{measure.TDXPageByPage, measure.TDXTwoPass} {
			d := td.MRTD(order)
			m.mrtds = append(m.mrtds, hex.EncodeToString(d[:]))
		}
		m.tdxFirmware, m.tdvfMeasures = sha256.Sum256(fw), measure.TDVFMeasuresBoot(fw)
	}
	if c.Firmware == "" {
		return m, nil
	}
	sig, err := measure.VCPUSig(c.VCPUType)
	if err != nil {
		return nil, err
	}
	fw, err := readHost(c.Firmware, "the firmware (--firmware)")
	if err != nil {
		return nil, err
	}
	o, err := measure.ParseOVMF(fw)
	if err != nil {
		return nil, err
	}
	m.sig, m.ovmf, m.firmware = sig, o, sha256.Sum256(fw)
	// A guest of no bytes checks what every guest needs of the firmware.
	if _, err := measure.LaunchDigest(m.snp(&Guest{})); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Measurer) snp(g *Guest) measure.SNP {
	return measure.SNP{Firmware: m.ovmf, DirectBoot: true, Kernel: g.Kernel, Initrd: g.Initramfs, Cmdline: g.Cmdline,
		VCPUs: m.c.VCPUs, VCPUSig: m.sig, GuestFeatures: measure.GuestFeaturesSNP}
}

// Measure is the SEV-SNP launch digest of g booted directly (its kernel,
// initramfs and command line in the SEV hashes table, QEMU's
// kernel-hashes=on) from m's firmware on m's vCPUs, as 'launch vm run
// --backend snp' launches it, and the TDX MRTDs of m's TDVF (which do not
// depend on g) with the RTMRs g's boot extends in m's memory. It records
// them in g, so Write writes MeasurementsFile. A kernel the TDX boot
// cannot measure is E1079.
func (m *Measurer) Measure(g *Guest) (*LaunchMeasurements, error) {
	l := &LaunchMeasurements{VCPUs: m.c.VCPUs, VCPUType: m.c.VCPUType}
	if m.ovmf != nil {
		d, err := measure.LaunchDigest(m.snp(g))
		if err != nil {
			return nil, err
		}
		l.SNPLaunchMeasurements, l.Firmware = []string{hex.EncodeToString(d[:])}, hex.EncodeToString(m.firmware[:])
	}
	if m.mrtds != nil {
		l.TDXMRTDs, l.TDXFirmware, l.TDXMemoryMiB = m.mrtds, hex.EncodeToString(m.tdxFirmware[:]), m.c.MemoryMiB
		r, err := m.rtmrs(g)
		if err != nil {
			return nil, err
		}
		l.TDXRTMRs = r
	}
	g.Launch = l
	return g.Launch, nil
}

// rtmrs are the RTMRs g's TD boot extends: under a TDVF that measures
// the boot, RTMR1, and RTMR2 when g's kernel can measure into it; RTMR0
// never. The kernel is checked either way.
func (m *Measurer) rtmrs(g *Guest) (*TDXRTMRs, error) {
	boot := measure.TDXBoot{Kernel: g.Kernel, Initrd: g.Initramfs, Cmdline: g.Cmdline, MemoryBytes: uint64(m.c.MemoryMiB) << 20}
	events, err := boot.Events()
	if err != nil {
		return nil, err
	}
	r := &TDXRTMRs{Unpinned: []string{rtmr0Unpinned}, Checked: rtmrsChecked}
	if !m.tdvfMeasures {
		r.Unpinned = []string{rtmrsUnmeasured}
		return r, nil
	}
	for _, e := range events {
		r.Events = append(r.Events, RTMREvent{RTMR: e.RTMR, Digest: hex.EncodeToString(e.Digest[:]), Event: e.Name})
	}
	r1, r2 := measure.ReplayRTMR(events, 1), measure.ReplayRTMR(events, 2)
	r.RTMR1 = hex.EncodeToString(r1[:])
	if measure.KernelMeasuresIntoRTMRs(g.Kernel) {
		r.RTMR2 = hex.EncodeToString(r2[:])
	} else {
		r.Unpinned = append(r.Unpinned, rtmr2Unpinned)
	}
	return r, nil
}

// BuildMeasured builds the guest for b and, when c names a firmware (or
// always, if must), measures its launch first checking the firmware.
func BuildMeasured(b BuildConfig, c MeasureConfig, must bool) (*Guest, error) {
	var m *Measurer
	if must || c.Firmware != "" || c.TDXFirmware != "" {
		var err error
		if m, err = NewMeasurer(c); err != nil {
			return nil, err
		}
	}
	g, err := Build(b)
	if err != nil || m == nil {
		return g, err
	}
	_, err = m.Measure(g)
	return g, err
}

// Text is what 'launch vm measure' prints after the guest's digests.
func (m *LaunchMeasurements) Text() string {
	var b bytes.Buffer
	for _, d := range m.SNPLaunchMeasurements {
		fmt.Fprintf(&b, "snp_launch_measurement %s\n", d)
	}
	if m.Firmware != "" {
		fmt.Fprintf(&b, "firmware_sha256        %s\nvcpus                  %d %s\n", m.Firmware, m.VCPUs, m.VCPUType)
	}
	for i, d := range m.TDXMRTDs {
		fmt.Fprintf(&b, "tdx_mrtd               %s %s\n", d, [...]string{"page-by-page", "two-pass"}[min(i, 1)])
	}
	if m.TDXFirmware != "" {
		fmt.Fprintf(&b, "tdx_firmware_sha256    %s\n", m.TDXFirmware)
	}
	if r := m.TDXRTMRs; r != nil {
		for i, v := range []string{"", r.RTMR1, r.RTMR2} {
			if v != "" {
				fmt.Fprintf(&b, "tdx_rtmr%d              %s\n", i, v)
			}
		}
		for _, u := range r.Unpinned {
			fmt.Fprintf(&b, "tdx_rtmr not pinned    %s\n", u)
		}
		for _, e := range r.Events {
			fmt.Fprintf(&b, "tdx_rtmr_event         %d %s %s\n", e.RTMR, e.Digest, e.Event)
		}
		fmt.Fprintf(&b, "tdx_memory_mib         %d\n", m.TDXMemoryMiB)
		if len(r.Events) > 0 {
			fmt.Fprintf(&b, "tdx_rtmrs_checked      %s\n", r.Checked)
		}
	}
	return b.String()
}

func (m *LaunchMeasurements) encode() []byte {
	b, _ := toml.Marshal(m) // strings and ints always marshal
	return append([]byte("# The guest's expected launch measurements ('launch vm measure').\n"), b...)
}

// Pins are what a policy pins of a built guest: the digests its VM is
// launched with and, when measured, its expected launch measurements.
type Pins struct {
	HostData   [32]byte
	MRConfigID [48]byte
	Launch     *LaunchMeasurements
	// InitData is the guest's init-data: the bundle measurement and
	// profile its VM runs.
	InitData *initdata.Document
}

// ReadPins reads a guest directory Write wrote: its init-data (which must
// decode) and MeasurementsFile, which must be there (a guest built with
// --firmware) and hold exactly its keys.
func ReadPins(dir string) (*Pins, error) {
	doc, err := readHost(filepath.Join(dir, InitDataFile), "the guest's init-data")
	if err != nil {
		return nil, err
	}
	d, err := initdata.Decode(doc)
	if err != nil {
		return nil, errcode.Errorf(errcode.InitDataInvalid, "%s: %v", filepath.Join(dir, InitDataFile), err).Host()
	}
	p := &Pins{HostData: initdata.HostData(doc), MRConfigID: initdata.MRConfigID(doc), Launch: &LaunchMeasurements{}, InitData: d}
	name := filepath.Join(dir, MeasurementsFile)
	raw, err := os.ReadFile(name)
	if err != nil {
		return nil, errcode.Errorf(errcode.VMBackendUnavailable, "%v", err).WithHint("build the guest with its firmware: launch vm build --firmware FILE BUNDLE -o DIR").Host()
	}
	dec := toml.NewDecoder(bytes.NewReader(raw)).DisallowUnknownFields()
	if err := dec.Decode(p.Launch); err != nil || len(p.Launch.SNPLaunchMeasurements)+len(p.Launch.TDXMRTDs) == 0 {
		return nil, errcode.Errorf(errcode.InitDataInvalid, "%s is not a guest's measurements: %v", name, err).Host()
	}
	ds := append(slices.Clone(p.Launch.SNPLaunchMeasurements), p.Launch.TDXMRTDs...)
	if r := p.Launch.TDXRTMRs; r != nil {
		for _, d := range []string{r.RTMR1, r.RTMR2} {
			if d != "" {
				ds = append(ds, d)
			}
		}
	}
	for _, d := range ds {
		if b, err := hex.DecodeString(d); err != nil || len(b) != 48 {
			return nil, errcode.Errorf(errcode.InitDataInvalid, "%s: %q is not 96 hex digits", name, d).Host()
		}
	}
	return p, nil
}

// Inputs says what m's measurements were computed from, for a policy's
// comment.
func (m *LaunchMeasurements) Inputs() string {
	var s []string
	if m.Firmware != "" {
		s = append(s, fmt.Sprintf("SEV-SNP firmware SHA-256 %s, %d %s vCPUs", m.Firmware, m.VCPUs, m.VCPUType))
	}
	if m.TDXFirmware != "" {
		s = append(s, "TDVF SHA-256 "+m.TDXFirmware)
	}
	if m.TDXRTMRs != nil {
		s = append(s, fmt.Sprintf("a %d MiB TD", m.TDXMemoryMiB))
	}
	return strings.Join(s, "; ")
}
