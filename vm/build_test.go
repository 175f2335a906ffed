package vm

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/vm/initdata"
)

// fakeKernel is a bzImage's boot header only: HdrS and a version string.
func fakeKernel(version string) []byte {
	le := binary.LittleEndian
	bz := make([]byte, 0x1000)
	// An EFI stub's PE32+ headers: one section after 512 bytes of headers.
	copy(bz, "MZ")
	le.PutUint32(bz[0x3c:], 0x40)
	copy(bz[0x40:], "PE\x00\x00")
	le.PutUint16(bz[0x46:], 1)
	le.PutUint16(bz[0x54:], 240)
	le.PutUint16(bz[0x58:], 0x20b)
	le.PutUint32(bz[0x58+60:], 0x200)
	le.PutUint32(bz[0x58+108:], 16)
	le.PutUint32(bz[0x58+240+16:], 0xe00)
	le.PutUint32(bz[0x58+240+20:], 0x200)
	// The boot protocol's header: version 2.15, loaded high, its initrd
	// anywhere below 4 GiB.
	copy(bz[0x202:], "HdrS")
	le.PutUint16(bz[0x206:], 0x20f)
	bz[0x211] = 1
	le.PutUint16(bz[0x236:], 2)
	le.PutUint16(bz[0x20E:], 0x300-0x200)
	copy(bz[0x300:], version+" (builder@example) #1 SMP\x00")
	return bz
}

// staticELF is the header of an x86-64 executable with no program
// headers: no interpreter, so static.
func staticELF() []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], 2)    // ET_EXEC
	binary.LittleEndian.PutUint16(h[18:], 0x3e) // EM_X86_64
	binary.LittleEndian.PutUint32(h[20:], 1)    // EV_CURRENT
	binary.LittleEndian.PutUint16(h[52:], 64)   // e_ehsize
	binary.LittleEndian.PutUint16(h[54:], 56)   // e_phentsize
	binary.LittleEndian.PutUint16(h[58:], 64)   // e_shentsize
	return h
}

// fixture is a bundle, a kernel's boot header, a modules directory and a
// static launch's ELF header.
func fixture(t *testing.T) BuildConfig {
	t.Helper()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	os.Mkdir(bundle, 0o755)
	os.WriteFile(filepath.Join(bundle, "ampoule.toml"), []byte("name = \"b\"\nversion = \"1.0.0\"\nprofiles = [\"debug\", \"staging\"]\n"), 0o644)
	// The smallest module: magic and version.
	os.WriteFile(filepath.Join(bundle, "module.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
	kernel := filepath.Join(dir, "vmlinuz")
	os.WriteFile(kernel, fakeKernel("6.1.0-test"), 0o644)
	mods := filepath.Join(dir, "modules")
	for _, m := range []string{"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/char/virtio_console.ko", "kernel/drivers/net/unrelated.ko"} {
		os.MkdirAll(filepath.Join(mods, filepath.Dir(m)), 0o755)
		os.WriteFile(filepath.Join(mods, m), []byte("module "+m), 0o644)
	}
	os.WriteFile(filepath.Join(mods, "modules.dep"), []byte(`kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/unrelated.ko:
`), 0o644)
	exe := filepath.Join(dir, "launch")
	os.WriteFile(exe, staticELF(), 0o755)
	return BuildConfig{Bundle: bundle, Profile: "debug", Launch: exe, Kernel: kernel, Modules: mods}
}

// TestBuildReproducible: two builds of one bundle give the same
// initramfs and init-data, byte for byte; one changed byte of the bundle's
// module changes the measurement and so the init-data's digests. The
// modules are the ones wanted, after what they need, in load order.
func TestBuildReproducible(t *testing.T) {
	cfg := fixture(t)
	a, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Initramfs, b.Initramfs) || !bytes.Equal(a.InitData, b.InitData) {
		t.Fatal("two builds of the same bundle differ")
	}
	if want := []string{"virtio_ring.ko", "virtio.ko", "virtio_pci.ko", "virtio_console.ko"}; !slices.Equal(a.Modules, want) {
		t.Errorf("modules %q, want %q", a.Modules, want)
	}
	doc, err := initdata.Decode(a.InitData)
	if err != nil || doc.Measurement != a.Measurement.String() || doc.Profile != "debug" {
		t.Fatalf("init-data %v: %s", err, a.InitData)
	}
	module := filepath.Join(cfg.Bundle, "module.wasm")
	os.WriteFile(module, []byte("\x00asm\x01\x00\x00\x00\x00\x00"), 0o644)
	c, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c.Measurement == a.Measurement || c.HostData() == a.HostData() || c.MRConfigID() == a.MRConfigID() {
		t.Error("a changed bundle byte leaves the measurement or a digest")
	}
	if c.Cmdline != Cmdline || !strings.Contains(c.Cmdline, "rdinit=/init") {
		t.Errorf("cmdline %q", c.Cmdline)
	}
	dir := t.TempDir()
	if err := a.Write(dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, InitramfsFile)); !bytes.Equal(got, a.Initramfs) {
		t.Error("the written initramfs is not the built one")
	}
}

// TestBuildRefuses: a dynamic launch (the guest has no libc), a kernel
// that is not a bzImage, compressed modules and a bundle mounting host
// directories are refused with their codes.
func TestBuildRefuses(t *testing.T) {
	cfg := fixture(t)
	dynamic := cfg
	dynamic.Launch = "/bin/sh"
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no /bin/sh to stand for a dynamic executable")
	}
	if _, err := Build(dynamic); errcode.From(err).Code != errcode.VMBackendUnavailable || !strings.Contains(err.Error(), "dynamically") {
		t.Errorf("a dynamic launch: %v", err)
	}
	notKernel := cfg
	notKernel.Kernel, notKernel.Modules = filepath.Join(cfg.Bundle, "ampoule.toml"), ""
	if _, err := Build(notKernel); errcode.From(err).Code != errcode.VMBackendUnavailable || !strings.Contains(err.Error(), "bzImage") {
		t.Errorf("not a kernel: %v", err)
	}
	os.WriteFile(filepath.Join(cfg.Modules, "modules.dep"), []byte("kernel/drivers/virtio/virtio.ko.xz:\n"), 0o644)
	if _, err := Build(cfg); errcode.From(err).Code != errcode.VMBackendUnavailable || !strings.Contains(err.Error(), "compressed") {
		t.Errorf("compressed modules: %v", err)
	}
	os.WriteFile(filepath.Join(cfg.Bundle, "ampoule.toml"), []byte("name = \"b\"\nversion = \"1.0.0\"\nprofiles = [\"debug\"]\ndirs = [\"data::/data\"]\n"), 0o644)
	if _, err := Build(cfg); errcode.From(err).Code != errcode.DirInvalid {
		t.Errorf("a bundle with dirs: %v", err)
	}
}

// TestWriteCPIO: the archive is one the system's cpio reads back (names,
// modes, contents, a device node), the same files in any order give the
// same bytes, and a bad name is refused.
func TestWriteCPIO(t *testing.T) {
	files := []File{
		{Name: "init", Mode: ModeReg | 0o755, Data: []byte("#!init\n")},
		{Name: "a/b/c.txt", Mode: ModeReg | 0o644, Data: []byte("odd length")},
		{Name: "dev/console", Mode: ModeChar | 0o600, Major: 5, Minor: 1},
	}
	var one, two bytes.Buffer
	if err := WriteCPIO(&one, files); err != nil {
		t.Fatal(err)
	}
	rev := slices.Clone(files)
	slices.Reverse(rev)
	if err := WriteCPIO(&two, rev); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) || one.Len()%512 != 0 {
		t.Fatal("the order of the files changed the archive, or it is not in 512-byte blocks")
	}
	for _, bad := range []string{"/abs", "a/../b", "", "a//b"} {
		if err := WriteCPIO(&bytes.Buffer{}, []File{{Name: bad, Mode: ModeReg}}); err == nil {
			t.Errorf("the name %q was taken", bad)
		}
	}
	if err := WriteCPIO(&bytes.Buffer{}, append(files, files[0])); err == nil {
		t.Error("a name given twice was taken")
	}
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("no cpio here to read the archive back")
	}
	list := exec.Command("cpio", "-itv", "--quiet")
	list.Stdin = bytes.NewReader(one.Bytes())
	out, err := list.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-rwxr-xr-x", " init", "drwxr-xr-x", " a/b\n", "crw-------", "5,   1", " dev/console", "10 Jan  1  1970 a/b/c.txt", "root     root"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cpio's listing lacks %q:\n%s", want, out)
		}
	}
	dir := t.TempDir()
	extract := exec.Command("cpio", "-id", "--quiet", "--no-absolute-filenames")
	extract.Dir, extract.Stdin = dir, bytes.NewReader(one.Bytes())
	if out, err := extract.CombinedOutput(); err != nil && os.Getuid() == 0 {
		t.Fatalf("%v: %s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a/b/c.txt")); string(got) != "odd length" {
		t.Errorf("extracted %q", got)
	}
}

// TestCommand: the SEV-SNP and TDX command lines carry the objects as
// QEMU documents them (docs/system/i386/amd-memory-encryption.rst,
// docs/system/i386/tdx.rst): the machine's confidential-guest-support
// names the object's id, host-data= is the base64 of the init-data's
// SHA-256, mrconfigid= of its SHA-384, the memory is a memfd backend the
// machine names, and the firmware is the -bios; tcg has none of them.
func TestCommand(t *testing.T) {
	g := &Guest{InitData: []byte("version = 1\n"), Cmdline: Cmdline}
	arg := func(args []string, flag, prefix string) string {
		for i := 0; i+1 < len(args); i++ {
			if args[i] == flag && strings.HasPrefix(args[i+1], prefix) {
				return args[i+1]
			}
		}
		return ""
	}
	prop := func(opt, key string) string {
		for _, kv := range strings.Split(opt, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				return v
			}
		}
		return ""
	}
	snp, err := Command(g, QEMUConfig{Backend: BackendSNP, Dir: "/g", Firmware: "/fw/OVMF.fd", MemoryMiB: 2048})
	if err != nil {
		t.Fatal(err)
	}
	obj := arg(snp, "-object", "sev-snp-guest,")
	hd, _ := base64.StdEncoding.DecodeString(prop(obj, "host-data"))
	want := g.HostData()
	machine := arg(snp, "-machine", "q35")
	mem := arg(snp, "-object", "memory-backend-memfd,")
	if !bytes.Equal(hd, want[:]) || prop(obj, "id") != prop(machine, "confidential-guest-support") || prop(obj, "kernel-hashes") != "on" ||
		prop(mem, "id") != prop(machine, "memory-backend") || prop(mem, "size") != "2048M" || arg(snp, "-bios", "") != "/fw/OVMF.fd" {
		t.Errorf("snp: %q", snp)
	}
	tdx, err := Command(g, QEMUConfig{Backend: BackendTDX, Dir: "/g", Firmware: "/fw/TDVF.fd"})
	if err != nil {
		t.Fatal(err)
	}
	obj = arg(tdx, "-object", "tdx-guest,")
	id, _ := base64.StdEncoding.DecodeString(prop(obj, "mrconfigid"))
	wantID := g.MRConfigID()
	machine = arg(tdx, "-machine", "q35")
	if !bytes.Equal(id, wantID[:]) || prop(obj, "id") != prop(machine, "confidential-guest-support") || prop(machine, "kernel-irqchip") != "split" ||
		arg(tdx, "-object", "memory-backend-memfd,") == "" || arg(tdx, "-bios", "") != "/fw/TDVF.fd" {
		t.Errorf("tdx: %q", tdx)
	}
	tcg, err := Command(g, QEMUConfig{Backend: BackendTCG, Dir: "/g", Ports: map[string]string{PortLog: "/out/a,b.log"}})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(tcg, " ")
	if strings.Contains(line, "sev-snp-guest") || strings.Contains(line, "tdx-guest") || strings.Contains(line, "confidential-guest-support") ||
		!strings.Contains(line, "path=/out/a,,b.log") || !strings.Contains(line, "name="+PortStatus) || arg(tcg, "-initrd", "") != "/g/"+InitramfsFile {
		t.Errorf("tcg: %q", tcg)
	}
	if arg(tcg, "-cpu", "") != "max" {
		t.Errorf("tcg without code compiled ahead: -cpu %q, want max", arg(tcg, "-cpu", ""))
	}
	// Code compiled ahead: the emulated processor has exactly the features
	// it was compiled for; a streamed port is a socket QEMU connects to.
	pinned := &Guest{InitData: g.InitData, Cmdline: Cmdline, Code: 1, Features: sandbox.CompileFeatures{SSE41: true, BMI1: true, POPCNT: true}}
	tcg, err = Command(pinned, QEMUConfig{Backend: BackendTCG, Dir: "/g", Sockets: map[string]string{PortOut: "/s/out.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := arg(tcg, "-cpu", ""); got != "max,sse4.1=on,bmi1=on,bmi2=off,popcnt=on" {
		t.Errorf("tcg with code compiled ahead: -cpu %q", got)
	}
	if arg(tcg, "-chardev", "socket,id=port0,path=/s/out.sock") == "" || !slices.Contains(tcg, "virtserialport,bus=vser0.0,chardev=port0,name="+PortOut) {
		t.Errorf("tcg with a streamed port: %q", tcg)
	}
	if kvm, _ := Command(pinned, QEMUConfig{Backend: BackendTCG, Dir: "/g", KVM: true}); arg(kvm, "-cpu", "") != "host" {
		t.Errorf("tcg under KVM: -cpu %q, want host (the build host's own features)", arg(kvm, "-cpu", ""))
	}
	for _, c := range []QEMUConfig{{Backend: BackendSNP}, {Backend: BackendTDX}, {Backend: "kvm"}} {
		if _, err := Command(g, c); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
