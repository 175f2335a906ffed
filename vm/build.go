// Package vm is the host side of a confidential VM that runs one bundle:
// Build makes its guest (an initramfs holding a static launch as PID 1,
// the bundle, the kernel's virtio modules, the init-data document and the
// kernel command line), and Command the QEMU command line that boots it,
// with the init-data's digest as SEV-SNP HOST_DATA or TDX MRCONFIGID.
package vm

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/vm/initdata"
)

// The files of a built guest, in its directory.
const (
	InitramfsFile = "initramfs.cpio"
	InitDataFile  = "init-data.toml"
	CmdlineFile   = "cmdline"
	KernelFile    = "vmlinuz"
)

// Paths inside the guest.
const (
	GuestBundle   = "bundle"
	GuestInitData = "init-data.toml"
	GuestModules  = "lib/modules"
	// GuestModuleOrder lists the modules to load, one file name a line,
	// in order.
	GuestModuleOrder = "lib/modules/order"
	// GuestCode holds the module's code compiled on the build host
	// (BuildConfig.Precompile): a wazero compilation cache with the
	// inspection's verdict, root's alone (0700).
	GuestCode = "code"
)

// Cmdline is the guest kernel's command line: the console on the first
// serial port, quiet, launch as the first process, no reboot on a panic
// (QEMU runs with -no-reboot, so a panic ends the VM), and no check of
// the timer interrupt, which a guest under emulation on a loaded host
// fails ("IO-APIC + timer doesn't work!", seen here) and panics.
const Cmdline = "console=ttyS0 loglevel=1 panic=-1 no_timer_check rdinit=/init"

// modulesWanted are the kernel modules a guest loads when its kernel
// builds them as modules (Debian's does): the virtio serial ports that
// carry the run's output, log and status, and the SEV-SNP and TDX guest
// drivers, with what each depends on.
var modulesWanted = []string{"virtio_pci", "virtio_console", "sev_guest", "tdx_guest"}

// BuildConfig is what Build needs.
type BuildConfig struct {
	// Bundle is the bundle's path; Profile the profile it runs under.
	Bundle, Profile string
	// Launch is a static launch executable (CGO_ENABLED=0), the guest's
	// PID 1.
	Launch string
	// Kernel is the guest's kernel (a bzImage); Modules the directory of
	// its modules ("" for /lib/modules/VERSION, VERSION read from the
	// kernel).
	Kernel, Modules string
	// Precompile compiles the module on this host with Launch, as the
	// guest's runner would, into the initramfs (GuestCode), so that the
	// guest need not: under emulation, compiling a 2.5 MiB Go module
	// inside the guest takes minutes. The code is measured with the rest
	// of the initramfs. Launch must be able to run here, and the guest's
	// processor must have this one's CompileFeatures for the code to be
	// used (QEMU's -cpu, which Command sets for tcg); elsewhere the guest
	// finds no entry of its own and compiles.
	Precompile bool
	// CompileTime bounds the compile ahead (default 5 minutes).
	CompileTime time.Duration
}

// Guest is a built guest.
type Guest struct {
	// Initramfs, InitData and Cmdline are the files' bytes.
	Initramfs, InitData []byte
	Cmdline             string
	Kernel              []byte
	// Measurement is the bundle's under Profile.
	Measurement loader.Measurement
	Profile     string
	// Modules are the kernel modules the guest loads, in order.
	Modules []string
	// Code are the bytes of the compiled code the initramfs carries (0:
	// none), and Features the processor features it was compiled for.
	Code     int64
	Features sandbox.CompileFeatures
	// Launch, once Measure has run, are its expected launch
	// measurements.
	Launch *LaunchMeasurements
}

// HostData is the SEV-SNP HOST_DATA the VM is launched with.
func (g *Guest) HostData() [32]byte { return initdata.HostData(g.InitData) }

// MRConfigID is the TDX MRCONFIGID the VM is launched with.
func (g *Guest) MRConfigID() [48]byte { return initdata.MRConfigID(g.InitData) }

// Build makes the guest for cfg: the same inputs give the same bytes.
func Build(cfg BuildConfig) (*Guest, error) {
	p, err := profiles.Get(cfg.Profile)
	if err != nil {
		return nil, err
	}
	b, err := loader.Open(cfg.Bundle)
	if err != nil {
		return nil, err
	}
	if b.Generated || b.ManifestBytes == nil {
		return nil, errcode.Errorf(errcode.BareModuleRefused, "a VM runs a bundle with its manifest, not a bare module").WithHint("make a bundle: a directory with ampoule.toml and the module")
	}
	if !b.Manifest.AllowsProfile(p.Name) {
		return nil, errcode.Errorf(errcode.ProfileNotAllowed, "%s allows the profiles %s, not %s", b.Source, strings.Join(b.Manifest.Profiles, ", "), p.Name)
	}
	if len(b.Manifest.Dirs) > 0 || b.Manifest.Sealed != nil {
		return nil, errcode.Errorf(errcode.DirInvalid, "the manifest mounts host directories or a sealed store, which a VM's guest does not have").
			WithHint("a VM runs bundles without dirs and [sealed]")
	}
	g := &Guest{Measurement: loader.Measure(b, p.Name), Profile: p.Name, Cmdline: Cmdline}
	doc := &initdata.Document{Version: initdata.Version, Measurement: g.Measurement.String(), Profile: p.Name, LogRecipients: b.Manifest.LogRecipients}
	if b.Manifest.LogRecipient != "" {
		doc.LogRecipients = []string{b.Manifest.LogRecipient}
	}
	if br := b.Manifest.Broker; br != nil {
		doc.Broker = &initdata.Broker{URL: br.URL, Key: base64.StdEncoding.EncodeToString(br.Key)}
	}
	if g.InitData, err = doc.Encode(); err != nil {
		return nil, errcode.Errorf(errcode.InitDataInvalid, "%v", err)
	}
	launch, err := readStatic(cfg.Launch)
	if err != nil {
		return nil, err
	}
	if g.Kernel, err = readHost(cfg.Kernel, "the kernel"); err != nil {
		return nil, err
	}
	files := []File{
		{Name: "init", Mode: ModeReg | 0o755, Data: launch},
		{Name: GuestInitData, Mode: ModeReg | 0o444, Data: g.InitData},
		{Name: path.Join(GuestBundle, loader.ManifestName), Mode: ModeReg | 0o444, Data: b.ManifestBytes},
		{Name: path.Join(GuestBundle, moduleName(b.Manifest)), Mode: ModeReg | 0o444, Data: b.Module},
		{Name: "dev", Mode: ModeDir | 0o755}, {Name: "dev/console", Mode: ModeChar | 0o600, Major: 5, Minor: 1},
		{Name: "proc", Mode: ModeDir | 0o555}, {Name: "sys", Mode: ModeDir | 0o555},
		{Name: "run", Mode: ModeDir | 0o700}, {Name: "tmp", Mode: ModeDir | 0o1777},
	}
	if cfg.Precompile {
		code, err := precompile(cfg, b)
		if err != nil {
			return nil, err
		}
		for _, f := range code {
			g.Code += int64(len(f.Data))
		}
		files = append(files, code...)
		g.Features = sandbox.HostCompileFeatures()
	}
	mods, err := kernelModules(g.Kernel, cfg.Modules)
	if err != nil {
		return nil, err
	}
	var order bytes.Buffer
	for _, m := range mods {
		data, err := readHost(m, "a kernel module")
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: path.Join(GuestModules, filepath.Base(m)), Mode: ModeReg | 0o444, Data: data})
		g.Modules = append(g.Modules, filepath.Base(m))
		fmt.Fprintln(&order, filepath.Base(m))
	}
	files = append(files, File{Name: GuestModuleOrder, Mode: ModeReg | 0o444, Data: order.Bytes()})
	var out bytes.Buffer
	if err := WriteCPIO(&out, files); err != nil {
		return nil, errcode.Errorf(errcode.Internal, "%v", err)
	}
	g.Initramfs = out.Bytes()
	return g, nil
}

// precompile compiles b's module with cfg.Launch into a temporary
// directory and returns its files as the initramfs's GuestCode: the
// directories 0700, the files 0400, as the guest's root reads them.
func precompile(cfg BuildConfig, b *loader.Bundle) ([]File, error) {
	tmp, err := os.MkdirTemp("", "ampoule-precompile-")
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "%v", err)
	}
	defer os.RemoveAll(tmp)
	bound := cfg.CompileTime
	if bound == 0 {
		bound = 5 * time.Minute
	}
	if err := sandbox.Precompile(cfg.Launch, b.Module, b.Manifest.Limits.MemoryPages(), tmp, bound); err != nil {
		return nil, err
	}
	files := []File{{Name: GuestCode, Mode: ModeDir | 0o700}}
	err = filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == tmp {
			return err
		}
		rel, err := filepath.Rel(tmp, p)
		if err != nil {
			return err
		}
		name := path.Join(GuestCode, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			files = append(files, File{Name: name, Mode: ModeDir | 0o700})
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			files = append(files, File{Name: name, Mode: ModeReg | 0o400, Data: data})
		default:
			return fmt.Errorf("%s is not a regular file", rel)
		}
		return nil
	})
	if err != nil {
		return nil, errcode.Errorf(errcode.CacheUnavailable, "the code compiled ahead: %v", err)
	}
	return files, nil
}

func moduleName(m *loader.Manifest) string {
	if m.Module != "" {
		return m.Module
	}
	return loader.DefaultModule
}

// Write writes the guest's files into dir, which it makes (0755) if
// missing; a file already there is replaced.
func (g *Guest) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errcode.Errorf(errcode.OutputExists, "%v", err).Host()
	}
	files := map[string][]byte{InitramfsFile: g.Initramfs, InitDataFile: g.InitData, CmdlineFile: []byte(g.Cmdline + "\n"), KernelFile: g.Kernel}
	if g.Launch != nil {
		files[MeasurementsFile] = g.Launch.encode()
	}
	for name, data := range files {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return errcode.Errorf(errcode.OutputExists, "%v", err).Host()
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return errcode.Errorf(errcode.OutputExists, "%v", err).Host()
		}
	}
	return nil
}

// WriteText writes what 'launch vm build' and 'vm measure' print: the
// measured inputs (Digests) and, once measured, the expected launch
// measurements.
func (g *Guest) WriteText(w io.Writer) {
	io.WriteString(w, g.Digests())
	if g.Launch != nil {
		io.WriteString(w, g.Launch.Text())
	}
}

// Digests is the guest's measured inputs, a line each.
func (g *Guest) Digests() string {
	hd, id := g.HostData(), g.MRConfigID()
	code := "compiled in the guest"
	if g.Code > 0 {
		code = fmt.Sprintf("%d bytes compiled ahead, for x86-64 with %s", g.Code, g.Features)
	}
	return fmt.Sprintf("measurement %s\nprofile     %s\nhost_data   %s\nmrconfigid  %s\ncmdline     %s\ncode        %s\n",
		g.Measurement, g.Profile, hex.EncodeToString(hd[:]), hex.EncodeToString(id[:]), g.Cmdline, code)
}

// readHost reads one of the host's files, regular only.
func readHost(name, what string) ([]byte, error) {
	if name == "" {
		return nil, errcode.Errorf(errcode.VMBackendUnavailable, "no path for %s", what).Host()
	}
	f, _, err := regfile.Open(name)
	if err != nil {
		return nil, errcode.Errorf(errcode.VMBackendUnavailable, "%s: %v", what, err).Host()
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, errcode.Errorf(errcode.VMBackendUnavailable, "%s: %v", what, err).Host()
	}
	return buf.Bytes(), nil
}

// readStatic reads the launch executable and refuses one that is not a
// statically linked ELF: the initramfs has no dynamic loader or libc.
func readStatic(name string) ([]byte, error) {
	data, err := readHost(name, "the launch executable")
	if err != nil {
		return nil, err
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, errcode.Errorf(errcode.VMBackendUnavailable, "%s is not an ELF executable: %v", name, err).Host()
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, errcode.Errorf(errcode.VMBackendUnavailable, "%s is linked dynamically, and the guest has no libc", name).
				WithHint("build launch with CGO_ENABLED=0 (make build does) and pass it with --launch").Host()
		}
	}
	if f.Machine != elf.EM_X86_64 {
		return nil, errcode.Errorf(errcode.VMBackendUnavailable, "%s is for %v, not x86-64", name, f.Machine).Host()
	}
	return data, nil
}

// KernelVersion reads a bzImage's version string (the boot protocol's
// kernel_version field, at 0x20E, points to it from 0x200).
func KernelVersion(bz []byte) (string, error) {
	if len(bz) < 0x210 || string(bz[0x202:0x206]) != "HdrS" {
		return "", fmt.Errorf("not a bzImage (no HdrS boot header)")
	}
	off := int(binary.LittleEndian.Uint16(bz[0x20E:])) + 0x200
	if off >= len(bz) {
		return "", fmt.Errorf("the bzImage's version string is outside it")
	}
	s := bz[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	v, _, _ := strings.Cut(string(s), " ")
	if v == "" || strings.ContainsAny(v, "/\\") || v == ".." {
		return "", fmt.Errorf("the bzImage's version string is not a release name")
	}
	return v, nil
}

// kernelModules lists the module files of modulesWanted and what they
// need, in an order they load in, from dir's modules.dep (dir "" is
// /lib/modules/VERSION for the kernel's VERSION). A module the kernel's
// list does not have is built in, or not in that kernel: it is left out.
func kernelModules(kernel []byte, dir string) ([]string, error) {
	if dir == "" {
		v, err := KernelVersion(kernel)
		if err != nil {
			return nil, errcode.Errorf(errcode.VMBackendUnavailable, "the kernel: %v", err).Host()
		}
		dir = filepath.Join("/lib/modules", v)
	}
	dep, err := readHost(filepath.Join(dir, "modules.dep"), "the kernel's modules.dep")
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	byName := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(dep))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if strings.HasSuffix(mod, ".ko") {
			byName[strings.ReplaceAll(strings.TrimSuffix(path.Base(mod), ".ko"), "-", "_")] = mod
		} else {
			return nil, errcode.Errorf(errcode.VMBackendUnavailable, "the kernel's module %s is compressed, which the guest does not load", mod).Host()
		}
		deps[mod] = strings.Fields(rest)
	}
	var order []string
	done := map[string]bool{}
	var visit func(m string)
	visit = func(m string) {
		if done[m] {
			return
		}
		done[m] = true
		for _, d := range deps[m] {
			visit(d)
		}
		order = append(order, m)
	}
	for _, w := range modulesWanted {
		if m, ok := byName[w]; ok {
			visit(m)
		}
	}
	var paths []string
	for _, m := range order {
		paths = append(paths, filepath.Join(dir, m))
	}
	// Two modules of one name would collide in the guest's directory.
	names := map[string]bool{}
	for _, p := range paths {
		if names[filepath.Base(p)] {
			return nil, errcode.Errorf(errcode.VMBackendUnavailable, "two kernel modules named %s", filepath.Base(p)).Host()
		}
		names[filepath.Base(p)] = true
	}
	return paths, nil
}

// The virtio serial ports between the guest and the host, by name.
const (
	// PortOut carries launch's own lines and, under debug, the
	// workload's output.
	PortOut = "org.ampoule.out"
	// PortLog carries the encrypted log.
	PortLog = "org.ampoule.log"
	// PortStatus carries the run's exit status, one decimal line.
	PortStatus = "org.ampoule.status"
)

// DefaultKernel is the newest /boot/vmlinuz-* (Debian's linux-image-amd64
// puts its kernels there), or "".
func DefaultKernel() string {
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		return ""
	}
	return ks[len(ks)-1]
}
