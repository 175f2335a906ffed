package measure

import (
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

func firmware(t testing.TB, name string) *OVMF {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOVMF(data)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestLaunchDigestVectors checks LaunchDigest against sev-snp-measure's
// own expected digests (tests/test_guest.py; testdata/README.md): QEMU,
// EPYC-v4, an empty kernel and initrd.
func TestLaunchDigestVectors(t *testing.T) {
	const amd, x64 = "ovmf_AmdSev_suffix.bin", "ovmf_OvmfX64_suffix.bin"
	for _, v := range []struct {
		name, fw string
		direct   bool
		cmdline  string
		vcpus    int
		features uint64
		want     string
	}{
		{"test_snp_default", amd, true, "console=ttyS0 loglevel=7", 1, 0x21, "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"},
		{"test_snp_guest_feature_snp_only", amd, true, "console=ttyS0 loglevel=7", 1, 0x1, "6d287813eb5222d770f75005c664e34c204f385ce832cc2ce7d0d6f354454362f390ef83a92046c042e706363b4b08fa"},
		{"test_snp_ovmf_hash_gen_default", amd, true, "", 1, 0x21, "329c8ce0972ae52343b64d34a434a86f245dfd74f5ed7aae15d22efc78fb9683632b9b50e4e1d7fa41179ef98a7ef198"},
		{"test_snp_ovmf_hash_gen_feature_snp_only", amd, true, "", 1, 0x1, "ddc5224521617a536ee7ce9dd6224d1b58a8d4fda1c741f3ac99fc4bfa04ba6e9fc98646d4a07a9079397fa3852819b5"},
		{"test_snp_without_kernel_default", amd, false, "", 1, 0x21, "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b"},
		{"test_snp_without_kernel_feature_snp_only", amd, false, "", 1, 0x1, "19358ba9a7615534a9a1e2f0dfc29384dcd4dcb7062ff9c6013b26869a5fc6ecabe033c48dd6f6db5d6d76e7c5df632d"},
		{"test_snp_with_multiple_vcpus_default", amd, true, "", 4, 0x21, "4953b1fb416fa874980e8442b3706d345926d5f38879134e00813c5d7abcbe78eafe7b422907be0b4698e2414a631942"},
		{"test_snp_with_multiple_vcpus_feature_snp_only", amd, true, "", 4, 0x1, "5061fffb019493a903613d56d54b94912a1a2f9e4502385f5c194616753720a92441310ba6c4933de877c36e23046ad5"},
		{"test_snp_with_ovmfx64_without_default", x64, false, "", 1, 0x21, "28797ae0afaba4005a81e629acebfb59e6687949d6be44007cd5506823b0dd66f146aaae26ff291eed7b493d8a64c385"},
		{"test_snp_with_ovmfx64_without_kernel_feature_snp_only", x64, false, "", 1, 0x1, "da0296de8193586a5512078dcd719eccecbd87e2b825ad4148c44f665dc87df21e5b49e21523a9ad993afdb6a30b4005"},
	} {
		t.Run(v.name, func(t *testing.T) {
			sig, err := VCPUSig("EPYC-v4")
			if err != nil {
				t.Fatal(err)
			}
			got, err := LaunchDigest(SNP{Firmware: firmware(t, v.fw), DirectBoot: v.direct, Cmdline: v.cmdline, VCPUs: v.vcpus, VCPUSig: sig, GuestFeatures: v.features})
			if err != nil {
				t.Fatal(err)
			}
			if h := hex.EncodeToString(got[:]); h != v.want {
				t.Errorf("launch digest %s, sev-snp-measure's %s", h, v.want)
			}
		})
	}
}

// TestFirmwareDigest checks the firmware's pages alone against
// sev-snp-measure's calc_snp_ovmf_hash vector (the digest a launch starts
// from).
func TestFirmwareDigest(t *testing.T) {
	o := firmware(t, "ovmf_AmdSev_suffix.bin")
	var ld launchDigest
	ld.normal(o.GPA(), o.data)
	const want = "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74"
	if h := hex.EncodeToString(ld[:]); h != want {
		t.Errorf("firmware digest %s, sev-snp-measure's %s", h, want)
	}
}

// TestLaunchDigestInputsCount checks each input moves the digest: a
// pinned digest is only worth something if every measured input is in it.
func TestLaunchDigestInputsCount(t *testing.T) {
	base := SNP{Firmware: firmware(t, "ovmf_AmdSev_suffix.bin"), DirectBoot: true, Kernel: []byte("k"), Initrd: []byte("i"), Cmdline: "c", VCPUs: 2, VCPUSig: 0x800f12, GuestFeatures: 1}
	d0, err := LaunchDigest(base)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*SNP){
		"kernel":   func(s *SNP) { s.Kernel = []byte("K") },
		"initrd":   func(s *SNP) { s.Initrd = []byte("I") },
		"cmdline":  func(s *SNP) { s.Cmdline = "C" },
		"vcpus":    func(s *SNP) { s.VCPUs = 3 },
		"vcpu sig": func(s *SNP) { s.VCPUSig = 0xa00f11 },
		"features": func(s *SNP) { s.GuestFeatures = 0x21 },
		"no boot":  func(s *SNP) { s.DirectBoot = false },
	} {
		s := base
		change(&s)
		d, err := LaunchDigest(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d == d0 {
			t.Errorf("changing the %s leaves the launch digest %x", name, d)
		}
	}
}

// TestLaunchDigestRefusals: sev-snp-measure's
// test_snp_with_ovmfx64_and_kernel_should_fail, and the other inputs a
// launch cannot have, are registered errors.
func TestLaunchDigestRefusals(t *testing.T) {
	amd, x64 := firmware(t, "ovmf_AmdSev_suffix.bin"), firmware(t, "ovmf_OvmfX64_suffix.bin")
	for name, c := range map[string]struct {
		s    SNP
		code errcode.Code
	}{
		"direct boot without kernel hashes": {SNP{Firmware: x64, DirectBoot: true, VCPUs: 1}, errcode.FirmwareInvalid},
		"no firmware":                       {SNP{VCPUs: 1}, errcode.FirmwareInvalid},
		"no vcpus":                          {SNP{Firmware: amd}, errcode.Usage},
	} {
		_, err := LaunchDigest(c.s)
		if codeOf(err) != c.code {
			t.Errorf("%s: %v, want %v", name, err, c.code)
		}
	}
	for name, data := range map[string][]byte{
		"empty":        nil,
		"not pages":    make([]byte, 4095),
		"bad metadata": corrupt(t),
	} {
		if _, err := ParseOVMF(data); codeOf(err) != errcode.FirmwareInvalid {
			t.Errorf("%s: %v, want E1078", name, err)
		}
	}
	if _, err := VCPUSig("Pentium"); codeOf(err) != errcode.Usage {
		t.Errorf("vcpu type Pentium: %v", err)
	}
}

// corrupt is the AmdSev fixture with its SEV metadata header changed.
func corrupt(t *testing.T) []byte {
	b, err := os.ReadFile("testdata/ovmf_AmdSev_suffix.bin")
	if err != nil {
		t.Fatal(err)
	}
	o, err := ParseOVMF(b)
	if err != nil {
		t.Fatal(err)
	}
	off, _ := o.u32(guidSEVMetadata)
	copy(b[len(b)-int(off):], "XXXX")
	return b
}

// TestVCPUSig checks the signatures sev-snp-measure's test_vcpu_types.py
// expects.
func TestVCPUSig(t *testing.T) {
	for name, want := range map[string]uint32{"EPYC": 0x800f12, "EPYC-Rome": 0x830f10, "EPYC-Milan": 0xa00f11, "EPYC-Genoa": 0xa10f10} {
		if got, err := VCPUSig(name); err != nil || got != want {
			t.Errorf("%s: %#x %v, want %#x", name, got, err, want)
		}
	}
}

// FuzzParseOVMF: any firmware image is parsed or refused with E1078, and
// a parsed one is measured or refused, never a panic.
func FuzzParseOVMF(f *testing.F) {
	for _, n := range []string{"ovmf_AmdSev_suffix.bin", "ovmf_OvmfX64_suffix.bin"} {
		b, err := os.ReadFile("testdata/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOVMF(b)
		if err != nil {
			if codeOf(err) != errcode.FirmwareInvalid {
				t.Fatalf("unregistered error %v", err)
			}
			return
		}
		for _, direct := range []bool{false, true} {
			if _, err := LaunchDigest(SNP{Firmware: o, DirectBoot: direct, VCPUs: 2}); err != nil && codeOf(err) != errcode.FirmwareInvalid {
				t.Fatalf("unregistered error %v", err)
			}
		}
	})
}

// codeOf is the registered code in err's chain, or 0.
func codeOf(err error) errcode.Code {
	var e *errcode.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
