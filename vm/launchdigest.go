package vm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

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
)

// MeasureConfig is what an SEV-SNP launch measures beside the guest.
type MeasureConfig struct {
	// Firmware is the SEV-SNP OVMF (OvmfPkg/AmdSev) QEMU loads (-bios).
	Firmware string
	// VCPUs (-smp) and VCPUType (-cpu): DefaultVCPUs and DefaultVCPUType
	// when zero.
	VCPUs    int
	VCPUType string
}

// LaunchMeasurements are a guest's expected launch measurements.
type LaunchMeasurements struct {
	// SNPLaunchMeasurements are the SEV-SNP MEASUREMENTs accepted (hex).
	SNPLaunchMeasurements []string `toml:"snp_launch_measurements"`
	// Firmware is the SHA-256 of the OVMF measured; VCPUs and VCPUType
	// the vCPUs: the inputs a reader needs to compute them again.
	Firmware string `toml:"firmware_sha256"`
	VCPUs    int    `toml:"vcpus"`
	VCPUType string `toml:"vcpu_type"`
}

// Measurer measures guests' SEV-SNP launches from one firmware on one
// set of vCPUs; NewMeasurer checks those before any guest is built.
type Measurer struct {
	c        MeasureConfig
	sig      uint32
	ovmf     *measure.OVMF
	firmware [32]byte
}

// NewMeasurer reads and checks c's firmware and vCPU type: a firmware
// that cannot measure a direct-boot kernel, or c.VCPUs processors, is
// E1078; no firmware, or a vCPU type QEMU does not have, E1001.
func NewMeasurer(c MeasureConfig) (*Measurer, error) {
	if c.VCPUs == 0 {
		c.VCPUs = DefaultVCPUs
	}
	if c.VCPUType == "" {
		c.VCPUType = DefaultVCPUType
	}
	if c.Firmware == "" {
		return nil, errcode.Errorf(errcode.Usage, "measuring an SEV-SNP launch needs the firmware it boots").
			WithHint("pass --firmware FILE, the SEV-SNP OVMF (OvmfPkg/AmdSev, AMDSEV.fd) 'launch vm run --backend snp' is given").Host()
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
	m := &Measurer{c: c, sig: sig, ovmf: o, firmware: sha256.Sum256(fw)}
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
// --backend snp' launches it. It records them in g, so Write writes
// MeasurementsFile.
func (m *Measurer) Measure(g *Guest) (*LaunchMeasurements, error) {
	d, err := measure.LaunchDigest(m.snp(g))
	if err != nil {
		return nil, err
	}
	g.Launch = &LaunchMeasurements{SNPLaunchMeasurements: []string{hex.EncodeToString(d[:])}, Firmware: hex.EncodeToString(m.firmware[:]), VCPUs: m.c.VCPUs, VCPUType: m.c.VCPUType}
	return g.Launch, nil
}

// BuildMeasured builds the guest for b and, when c names a firmware (or
// always, if must), measures its launch first checking the firmware.
func BuildMeasured(b BuildConfig, c MeasureConfig, must bool) (*Guest, error) {
	var m *Measurer
	if must || c.Firmware != "" {
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
	fmt.Fprintf(&b, "firmware_sha256        %s\nvcpus                  %d %s\n", m.Firmware, m.VCPUs, m.VCPUType)
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
	if err := dec.Decode(p.Launch); err != nil || len(p.Launch.SNPLaunchMeasurements) == 0 {
		return nil, errcode.Errorf(errcode.InitDataInvalid, "%s is not a guest's measurements: %v", name, err).Host()
	}
	for _, d := range p.Launch.SNPLaunchMeasurements {
		if b, err := hex.DecodeString(d); err != nil || len(b) != 48 {
			return nil, errcode.Errorf(errcode.InitDataInvalid, "%s: %q is not 96 hex digits", name, d).Host()
		}
	}
	return p, nil
}
