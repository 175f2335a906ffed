package vm

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/vm/measure"
)

const amdSEV = "measure/testdata/ovmf_AmdSev_suffix.bin"

// TestBuildMeasured: the launch digest recorded for a built guest is the
// one measure computes from the very kernel, initramfs and command line
// Write puts in the directory QEMU boots from, on the vCPUs run gives
// QEMU; ReadPins reads it back with the init-data's digests.
func TestBuildMeasured(t *testing.T) {
	cfg := fixture(t)
	g, err := BuildMeasured(cfg, MeasureConfig{Firmware: amdSEV, VCPUs: 3, VCPUType: "EPYC-Milan"}, true)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	o, err := measure.ParseOVMF(mustRead(t, amdSEV))
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := measure.VCPUSig("EPYC-Milan")
	want, err := measure.LaunchDigest(measure.SNP{Firmware: o, DirectBoot: true, Kernel: read(KernelFile), Initrd: read(InitramfsFile),
		Cmdline: strings.TrimSuffix(string(read(CmdlineFile)), "\n"), VCPUs: 3, VCPUSig: sig, GuestFeatures: measure.GuestFeaturesSNP})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ReadPins(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Launch.SNPLaunchMeasurements; len(got) != 1 || got[0] != hex.EncodeToString(want[:]) {
		t.Errorf("recorded %q, the directory's files measure %x", got, want)
	}
	if p.HostData != g.HostData() || p.MRConfigID != g.MRConfigID() || p.Launch.VCPUs != 3 || p.Launch.VCPUType != "EPYC-Milan" {
		t.Errorf("pins %+v do not match the guest", p)
	}
	// QEMU gets the vCPUs measured.
	args, err := Command(g, QEMUConfig{Backend: BackendSNP, Firmware: amdSEV, Dir: dir, VCPUs: 3, CPU: "EPYC-Milan"})
	if err != nil {
		t.Fatal(err)
	}
	if line := strings.Join(args, " "); !strings.Contains(line, "-smp 3 ") || !strings.Contains(line, "-cpu EPYC-Milan ") {
		t.Errorf("QEMU line %s does not boot 3 EPYC-Milan vCPUs", line)
	}
}

// TestBuildMeasuredRefusals: the firmware is checked before the guest is
// built, and a directory without measurements pins nothing.
func TestBuildMeasuredRefusals(t *testing.T) {
	cfg := fixture(t)
	for name, c := range map[string]struct {
		m    MeasureConfig
		code errcode.Code
	}{
		"no firmware":       {MeasureConfig{}, errcode.Usage},
		"no kernel hashes":  {MeasureConfig{Firmware: "measure/testdata/ovmf_OvmfX64_suffix.bin"}, errcode.FirmwareInvalid},
		"not firmware":      {MeasureConfig{Firmware: "measure/testdata/README.md"}, errcode.FirmwareInvalid},
		"unknown vcpu type": {MeasureConfig{Firmware: amdSEV, VCPUType: "Skylake"}, errcode.Usage},
		"too many vcpus":    {MeasureConfig{Firmware: amdSEV, VCPUs: 4096}, errcode.Usage},
		"missing firmware":  {MeasureConfig{Firmware: "measure/testdata/none.fd"}, errcode.VMBackendUnavailable},
	} {
		if _, err := BuildMeasured(cfg, c.m, true); errcode.From(err).Code != c.code {
			t.Errorf("%s: %v, want %v", name, err, c.code)
		}
	}
	g, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPins(dir); errcode.From(err).Code != errcode.VMBackendUnavailable {
		t.Errorf("a guest built without --firmware: %v", err)
	}
	os.WriteFile(filepath.Join(dir, MeasurementsFile), []byte("snp_launch_measurements = [\"00\"]\n"), 0o644)
	if _, err := ReadPins(dir); errcode.From(err).Code != errcode.InitDataInvalid {
		t.Errorf("a short digest: %v", err)
	}
	os.WriteFile(filepath.Join(dir, MeasurementsFile), []byte("tdx = 1\n"), 0o644)
	if _, err := ReadPins(dir); errcode.From(err).Code != errcode.InitDataInvalid {
		t.Errorf("an unknown key: %v", err)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRunMeasuresSNP: an SEV-SNP run (here --dry-run) measures the guest
// it boots with the vCPUs it gives QEMU, the digest vm measure prints,
// and refuses a firmware that would leave the kernel unmeasured.
func TestRunMeasuresSNP(t *testing.T) {
	cfg := fixture(t)
	res, err := Run(context.Background(), RunConfig{Build: cfg, DryRun: true, QEMU: QEMUConfig{Backend: BackendSNP, Firmware: amdSEV, VCPUs: 4, CPU: "EPYC-Genoa"}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := BuildMeasured(cfg, MeasureConfig{Firmware: amdSEV, VCPUs: 4, VCPUType: "EPYC-Genoa"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Guest.Launch == nil || res.Guest.Launch.SNPLaunchMeasurements[0] != g.Launch.SNPLaunchMeasurements[0] {
		t.Errorf("run measured %+v, vm measure %+v", res.Guest.Launch, g.Launch)
	}
	_, err = Run(context.Background(), RunConfig{Build: cfg, DryRun: true, QEMU: QEMUConfig{Backend: BackendSNP, Firmware: "measure/testdata/ovmf_OvmfX64_suffix.bin"}})
	if errcode.From(err).Code != errcode.FirmwareInvalid {
		t.Errorf("an SNP run on OVMF without kernel hashes: %v", err)
	}
}

const tdvf = "measure/testdata/tdvf_one_page.bin"

// TestBuildMeasuredTDX: a guest measured with a TDVF records both orders'
// MRTDs of that firmware (measure's, which the guest's bytes do not move),
// ReadPins reads them back, and a TDX run measures with its own firmware.
func TestBuildMeasuredTDX(t *testing.T) {
	cfg := fixture(t)
	td, err := measure.ParseTDVF(mustRead(t, tdvf))
	if err != nil {
		t.Fatal(err)
	}
	a, b := td.MRTD(measure.TDXPageByPage), td.MRTD(measure.TDXTwoPass)
	want := []string{hex.EncodeToString(a[:]), hex.EncodeToString(b[:])}
	g, err := BuildMeasured(cfg, MeasureConfig{TDXFirmware: tdvf}, true)
	if err != nil {
		t.Fatal(err)
	}
	if l := g.Launch; len(l.SNPLaunchMeasurements) != 0 || !slices.Equal(l.TDXMRTDs, want) || l.TDXFirmware == "" {
		t.Errorf("measured %+v, want only the MRTDs %q", l, want)
	}
	if text := g.Launch.Text(); !strings.Contains(text, "tdx_mrtd               "+want[0]+" page-by-page\n") || !strings.Contains(text, "tdx_rtmr not pinned    rtmr0, rtmr1, rtmr2: the TDVF has no TdTcg2Dxe") {
		t.Errorf("vm measure prints\n%s", text)
	}
	dir := t.TempDir()
	if err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	p, err := ReadPins(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Launch.TDXMRTDs, want) || p.Launch.TDXFirmware != g.Launch.TDXFirmware {
		t.Errorf("read back %+v", p.Launch)
	}
	both, err := BuildMeasured(cfg, MeasureConfig{Firmware: amdSEV, TDXFirmware: tdvf}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(both.Launch.SNPLaunchMeasurements) != 1 || !slices.Equal(both.Launch.TDXMRTDs, want) {
		t.Errorf("both firmwares: %+v", both.Launch)
	}
	res, err := Run(context.Background(), RunConfig{Build: cfg, DryRun: true, QEMU: QEMUConfig{Backend: BackendTDX, Firmware: tdvf}})
	if err != nil {
		t.Fatal(err)
	}
	if l := res.Guest.Launch; l == nil || len(l.SNPLaunchMeasurements) != 0 || !slices.Equal(l.TDXMRTDs, want) {
		t.Errorf("a TDX run measured %+v", l)
	}
	if _, err := BuildMeasured(cfg, MeasureConfig{TDXFirmware: amdSEV}, true); errcode.From(err).Code != errcode.FirmwareInvalid {
		t.Errorf("an SEV-SNP OVMF as the TDVF: %v, want E1078", err)
	}
	os.WriteFile(filepath.Join(dir, MeasurementsFile), []byte("tdx_mrtds = [\"00\"]\n"), 0o644)
	if _, err := ReadPins(dir); errcode.From(err).Code != errcode.InitDataInvalid {
		t.Errorf("a short MRTD: %v", err)
	}
}

// measuringTDVF is tdvf with TdTcg2Dxe's FILE_GUID in its BFV: a TDVF
// that measures the boot into RTMRs.
func measuringTDVF(t *testing.T) string {
	fw := mustRead(t, tdvf)
	copy(fw[0x10:], []byte{0x1e, 0x22, 0x62, 0xf0, 0x07, 0xc6, 0xc2, 0x44, 0xb0, 0xb4, 0xc3, 0x88, 0x63, 0x31, 0xd3, 0x51})
	name := filepath.Join(t.TempDir(), "tdvf.fd")
	if err := os.WriteFile(name, fw, 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestBuildMeasuredTDXRTMRs: under a TDVF that measures the boot, a
// guest records RTMR1 replayed from measure's events for its own kernel,
// initramfs and command line in its memory, and RTMR2 only if its kernel
// can measure into it; RTMR0 never. ReadPins reads them back and refuses
// a register that is not 96 hex digits.
func TestBuildMeasuredTDXRTMRs(t *testing.T) {
	cfg := fixture(t)
	fw := measuringTDVF(t)
	g, err := BuildMeasured(cfg, MeasureConfig{TDXFirmware: fw}, true)
	if err != nil {
		t.Fatal(err)
	}
	events, err := measure.TDXBoot{Kernel: g.Kernel, Initrd: g.Initramfs, Cmdline: g.Cmdline, MemoryBytes: DefaultMemoryMiB << 20}.Events()
	if err != nil {
		t.Fatal(err)
	}
	r1 := measure.ReplayRTMR(events, 1)
	r := g.Launch.TDXRTMRs
	if r == nil || r.RTMR1 != hex.EncodeToString(r1[:]) || r.RTMR2 != "" || len(r.Events) != len(events) || g.Launch.TDXMemoryMiB != DefaultMemoryMiB {
		t.Fatalf("measured %+v, want RTMR1 %x alone", r, r1)
	}
	if !slices.Equal(r.Unpinned, []string{rtmr0Unpinned, rtmr2Unpinned}) {
		t.Errorf("unpinned %q", r.Unpinned)
	}
	text := g.Launch.Text()
	for _, line := range []string{"tdx_rtmr1              " + r.RTMR1 + "\n", "tdx_rtmr not pinned    " + rtmr2Unpinned + "\n",
		"tdx_rtmr_event         2 " + r.Events[4].Digest + " EV_EVENT_TAG Linux initrd\n", "tdx_rtmrs_checked      " + rtmrsChecked + "\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("vm measure prints\n%s\nwithout %q", text, line)
		}
	}
	dir := t.TempDir()
	if err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	p, err := ReadPins(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Launch.TDXRTMRs == nil || p.Launch.TDXRTMRs.RTMR1 != r.RTMR1 || len(p.Launch.TDXRTMRs.Events) != len(r.Events) {
		t.Errorf("read back %+v", p.Launch.TDXRTMRs)
	}
	// The memory places the initramfs, which the kernel's digest covers.
	more, err := BuildMeasured(cfg, MeasureConfig{TDXFirmware: fw, MemoryMiB: 2048}, true)
	if err != nil {
		t.Fatal(err)
	}
	if more.Launch.TDXRTMRs.RTMR1 == r.RTMR1 || more.Launch.TDXMRTDs[0] != g.Launch.TDXMRTDs[0] {
		t.Errorf("2 GiB: RTMR1 %s, 1 GiB: %s (MRTDs must not move)", more.Launch.TDXRTMRs.RTMR1, r.RTMR1)
	}
	// A kernel whose stub knows the CC measurement protocol measures the
	// command line and initramfs into RTMR2.
	cc := cfg
	cc.Kernel = filepath.Join(t.TempDir(), "vmlinuz")
	os.WriteFile(cc.Kernel, append(mustRead(t, cfg.Kernel), 0x3d, 0x1a, 0x75, 0x96), 0o644)
	withStub, err := BuildMeasured(cc, MeasureConfig{TDXFirmware: fw}, true)
	if err != nil {
		t.Fatal(err)
	}
	r2 := measure.ReplayRTMR(events, 2)
	if w := withStub.Launch.TDXRTMRs; w.RTMR2 != hex.EncodeToString(r2[:]) || !slices.Equal(w.Unpinned, []string{rtmr0Unpinned}) {
		t.Errorf("a stub that measures: %+v, want RTMR2 %x", w, r2)
	}
	raw := mustRead(t, filepath.Join(dir, MeasurementsFile))
	os.WriteFile(filepath.Join(dir, MeasurementsFile), bytes.Replace(raw, []byte(r.RTMR1), []byte("00"), 1), 0o644)
	if _, err := ReadPins(dir); errcode.From(err).Code != errcode.InitDataInvalid {
		t.Errorf("a short RTMR1: %v", err)
	}
	// A kernel the TDX boot cannot measure is refused when measured.
	bad := cfg
	bad.Kernel = filepath.Join(t.TempDir(), "vmlinuz")
	k := mustRead(t, cfg.Kernel)
	k[0] = 0
	os.WriteFile(bad.Kernel, k, 0o644)
	if _, err := BuildMeasured(bad, MeasureConfig{TDXFirmware: fw}, true); errcode.From(err).Code != errcode.KernelInvalid {
		t.Errorf("a kernel without its PE header: %v, want E1079", err)
	}
}
