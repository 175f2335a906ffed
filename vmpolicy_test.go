package ampoule

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/vm"
	"github.com/ampoule-run/ampoule/vm/initdata"
)

// vmDir is a guest directory as 'launch vm build --firmware' writes one,
// for the bundle's measurement under profile.
func vmDir(t *testing.T, bundle, profile, digest string) string {
	t.Helper()
	b, err := loader.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := (&initdata.Document{Version: initdata.Version, Measurement: loader.Measure(b, profile).String(), Profile: profile}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, vm.InitDataFile), doc, 0o644)
	os.WriteFile(filepath.Join(dir, vm.MeasurementsFile), []byte("snp_launch_measurements = [\""+digest+"\"]\nfirmware_sha256 = \"ab\"\nvcpus = 2\nvcpu_type = \"EPYC-v4\"\n"), 0o644)
	return dir
}

// TestPolicyTemplateVM: policy new --vm pins the VM's launch measurement
// and its init-data's digests, and the written policy reads back with
// them; a VM built for another bundle or profile is refused.
func TestPolicyTemplateVM(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	digest := strings.Repeat("5a", 48)
	dir := vmDir(t, hello, "staging", digest)
	tpl, err := PolicyTemplate(hello, PolicyConfig{Profiles: []string{"staging"}, VM: dir})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := attest.WriteTemplate(&out, tpl); err != nil {
		t.Fatal(err)
	}
	p, err := attest.ParsePolicy(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := os.ReadFile(filepath.Join(dir, vm.InitDataFile))
	if len(p.SNPLaunchMeasurements) != 1 || p.SNPLaunchMeasurements[0][0] != 0x5a || p.SNPHostData == nil || *p.SNPHostData != initdata.HostData(doc) ||
		p.TDXMRConfigID == nil || *p.TDXMRConfigID != initdata.MRConfigID(doc) {
		t.Errorf("the policy pins %x %v %v\n%s", p.SNPLaunchMeasurements, p.SNPHostData, p.TDXMRConfigID, out.Bytes())
	}
	if _, err := PolicyTemplate(hello, PolicyConfig{Profiles: []string{"production"}, VM: dir}); codeOf(err) != errcode.InitDataOtherBundle {
		t.Errorf("a VM built under another profile: %v", err)
	}
	other := testwasm.CopyBundle(t, hello, "name = \"other\"\nprofiles = [\"staging\"]\n")
	if _, err := PolicyTemplate(other, PolicyConfig{Profiles: []string{"staging"}, VM: dir}); codeOf(err) != errcode.InitDataOtherBundle {
		t.Errorf("a VM built for another bundle: %v", err)
	}
	if _, err := PolicyTemplate(hello, PolicyConfig{VM: t.TempDir()}); err == nil {
		t.Error("an empty directory pinned a VM")
	}
}

// TestPolicyTemplateVMTDX: a guest measured with a TDVF has its MRTDs
// pinned as tdx_mrtds, which read back as the policy's.
func TestPolicyTemplateVMTDX(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	dir := vmDir(t, hello, "staging", strings.Repeat("5a", 48))
	mrtds := []string{strings.Repeat("1c", 48), strings.Repeat("2d", 48)}
	os.WriteFile(filepath.Join(dir, vm.MeasurementsFile), []byte("vcpus = 2\nvcpu_type = \"EPYC-v4\"\ntdx_mrtds = [\""+mrtds[0]+"\", \""+mrtds[1]+"\"]\ntdx_firmware_sha256 = \"cd\"\n"), 0o644)
	tpl, err := PolicyTemplate(hello, PolicyConfig{Profiles: []string{"staging"}, VM: dir})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := attest.WriteTemplate(&out, tpl); err != nil {
		t.Fatal(err)
	}
	p, err := attest.ParsePolicy(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.TDXMRTDs) != 2 || p.TDXMRTDs[0][0] != 0x1c || p.TDXMRTDs[1][0] != 0x2d || len(p.SNPLaunchMeasurements) != 0 || p.TDXMRConfigID == nil {
		t.Errorf("the policy pins MRTDs %x, SNP %x\n%s", p.TDXMRTDs, p.SNPLaunchMeasurements, out.Bytes())
	}
	if !strings.Contains(out.String(), "TDVF SHA-256 cd") {
		t.Errorf("the policy does not say which TDVF was measured:\n%s", out.Bytes())
	}
}

// TestPolicyTemplateVMTDXRTMRs: a guest's RTMRs in measurements.toml are
// pinned as [tdx_rtmrs], only those the guest's measurement pins, with
// what they were checked against and why the others are not, in
// comments; the policy reads them back.
func TestPolicyTemplateVMTDXRTMRs(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	dir := vmDir(t, hello, "staging", strings.Repeat("5a", 48))
	rtmr1 := strings.Repeat("3e", 48)
	os.WriteFile(filepath.Join(dir, vm.MeasurementsFile), []byte("vcpus = 2\nvcpu_type = \"EPYC-v4\"\ntdx_mrtds = [\""+strings.Repeat("1c", 48)+
		"\"]\ntdx_firmware_sha256 = \"cd\"\ntdx_memory_mib = 1024\n[tdx_rtmrs]\nrtmr1 = \""+rtmr1+"\"\nunpinned = [\"rtmr0: not computed\", \"rtmr2: the stub cannot\"]\nchecked = \"a boot's event log\"\n"+
		"[[tdx_rtmrs.events]]\nrtmr = 1\ndigest = \""+rtmr1+"\"\nevent = \"the kernel\"\n"), 0o644)
	tpl, err := PolicyTemplate(hello, PolicyConfig{Profiles: []string{"staging"}, VM: dir})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := attest.WriteTemplate(&out, tpl); err != nil {
		t.Fatal(err)
	}
	p, err := attest.ParsePolicy(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if p.TDXRTMRs[0] != nil || p.TDXRTMRs[1] == nil || p.TDXRTMRs[1][0] != 0x3e || p.TDXRTMRs[2] != nil {
		t.Errorf("the policy pins RTMRs %v\n%s", p.TDXRTMRs, out.Bytes())
	}
	for _, s := range []string{"# Checked: a boot's event log.\n", "# rtmr2: the stub cannot\n", "a 1024 MiB TD"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the policy does not say %q:\n%s", s, out.Bytes())
		}
	}
	// A guest whose TDVF measures nothing pins no RTMR and says why.
	os.WriteFile(filepath.Join(dir, vm.MeasurementsFile), []byte("vcpus = 2\nvcpu_type = \"EPYC-v4\"\ntdx_mrtds = [\""+strings.Repeat("1c", 48)+
		"\"]\ntdx_memory_mib = 1024\n[tdx_rtmrs]\nunpinned = [\"rtmr0, rtmr1, rtmr2: no TdTcg2Dxe\"]\nchecked = \"a boot's event log\"\n"), 0o644)
	if tpl, err = PolicyTemplate(hello, PolicyConfig{Profiles: []string{"staging"}, VM: dir}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := attest.WriteTemplate(&out, tpl); err != nil {
		t.Fatal(err)
	}
	if p, err = attest.ParsePolicy(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	if p.TDXRTMRs != [3]*[48]byte{} || !strings.Contains(out.String(), "# rtmr0, rtmr1, rtmr2: no TdTcg2Dxe\n") {
		t.Errorf("a TDVF that measures nothing: %v\n%s", p.TDXRTMRs, out.Bytes())
	}
}
