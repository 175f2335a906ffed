package vm

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
)

// The backends a VM boots on.
const (
	BackendSNP = "snp"
	BackendTDX = "tdx"
	// BackendTCG boots the same guest with no confidential objects (under
	// KVM when /dev/kvm is there, else QEMU's emulator): the guest runs on
	// the simulator, and says so.
	BackendTCG = "tcg"
)

// QEMUConfig is a VM's machine.
type QEMUConfig struct {
	// QEMU is the emulator (default qemu-system-x86_64).
	QEMU string
	// Backend is BackendSNP, BackendTDX or BackendTCG.
	Backend string
	// Dir is the built guest's directory (Write's), Kernel the kernel in it
	// or another.
	Dir, Kernel string
	// Firmware is OVMF (SEV-SNP) or TDVF (TDX); none for tcg, which boots
	// the kernel directly.
	Firmware string
	// MemoryMiB is the guest's memory; VCPUs its processors
	// (DefaultVCPUs when zero).
	MemoryMiB, VCPUs int
	// CPU is the SEV-SNP vCPU type (-cpu; DefaultVCPUType when empty),
	// which the launch measures.
	CPU string
	// KVM uses -accel kvm (tcg backend: when /dev/kvm is there).
	KVM bool
	// Ports are the files the guest's ports write to, by port name;
	// Sockets, for a port named in it, a Unix socket QEMU connects to
	// instead (the host listening on it reads the port as the guest writes
	// it); Console is the serial console's file.
	Ports, Sockets map[string]string
	Console        string
}

// ParseMemory reads a --memory SIZE: MiB, or a number with M or G.
func ParseMemory(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1024, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		s = strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n*mult < 128 || n*mult > 1<<20 {
		return 0, errcode.Errorf(errcode.Usage, "--memory %q is not a size of 128M to 1024G", s).WithHint("write --memory 512M or --memory 2G").Host()
	}
	return n * mult, nil
}

// Command is the QEMU command line for g's VM: q35, the kernel, initramfs
// and command line, three virtio serial ports (the run's lines, its
// encrypted log, its exit status) and, for SEV-SNP and TDX, the
// confidential-guest object with the init-data's digest and a memfd
// memory backend for private memory, with the firmware. The objects'
// syntax is QEMU's documented one (docs/system/i386/amd-memory-encryption.rst:
// sev-snp-guest, host-data= base64 of 32 bytes, kernel-hashes=on; and
// docs/system/i386/tdx.rst: tdx-guest, mrconfigid= base64 of 48 bytes,
// kernel-irqchip=split).
func Command(g *Guest, c QEMUConfig) ([]string, error) {
	qemu := c.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	mem := c.MemoryMiB
	if mem == 0 {
		mem = DefaultMemoryMiB
	}
	vcpus, cpu := c.VCPUs, c.CPU
	if vcpus == 0 {
		vcpus = DefaultVCPUs
	}
	if cpu == "" {
		cpu = DefaultVCPUType
	}
	kernel := c.Kernel
	if kernel == "" {
		kernel = filepath.Join(c.Dir, KernelFile)
	}
	args := []string{qemu, "-nodefaults", "-nographic", "-no-reboot", "-no-user-config",
		"-smp", strconv.Itoa(vcpus), "-m", fmt.Sprintf("%dM", mem)}
	machine := "q35"
	switch c.Backend {
	case BackendSNP:
		if c.Firmware == "" {
			return nil, errcode.Errorf(errcode.Usage, "--backend snp needs --firmware, an SEV-SNP OVMF (OvmfPkg/AmdSev, AMDSEV.fd)").Host()
		}
		hd := g.HostData()
		machine += ",confidential-guest-support=sev0,memory-backend=ram0"
		args = append(args, "-accel", "kvm", "-cpu", cpu,
			"-object", fmt.Sprintf("memory-backend-memfd,id=ram0,size=%dM,share=true,prealloc=false", mem),
			"-object", "sev-snp-guest,id=sev0,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on,host-data="+base64.StdEncoding.EncodeToString(hd[:]),
			"-bios", c.Firmware)
	case BackendTDX:
		if c.Firmware == "" {
			return nil, errcode.Errorf(errcode.Usage, "--backend tdx needs --firmware, a TDVF (OVMF built for TDX)").Host()
		}
		id := g.MRConfigID()
		machine += ",kernel-irqchip=split,confidential-guest-support=tdx0,memory-backend=ram0"
		args = append(args, "-accel", "kvm", "-cpu", "host",
			"-object", fmt.Sprintf("memory-backend-memfd,id=ram0,size=%dM,share=true,prealloc=false", mem),
			"-object", "tdx-guest,id=tdx0,mrconfigid="+base64.StdEncoding.EncodeToString(id[:]),
			"-bios", c.Firmware)
	case BackendTCG:
		if c.KVM {
			args = append(args, "-accel", "kvm", "-cpu", "host")
		} else {
			// The emulator's processor offers wazero the features the
			// code in the initramfs was compiled for, and no others, so
			// that the guest finds it (wazero keys its entries by them).
			cpu := "max"
			if g.Code > 0 {
				cpu = g.Features.QEMUCPU(cpu)
			}
			args = append(args, "-accel", "tcg,thread=multi", "-cpu", cpu)
		}
		if c.Firmware != "" {
			args = append(args, "-bios", c.Firmware)
		}
	default:
		return nil, errcode.Errorf(errcode.BackendUnknown, "no VM backend %q", c.Backend).WithHint("the VM backends are snp, tdx and tcg").Host()
	}
	console := c.Console
	if console == "" {
		console = os.DevNull
	}
	args = append(args, "-machine", machine,
		"-kernel", kernel, "-initrd", filepath.Join(c.Dir, InitramfsFile), "-append", g.Cmdline,
		"-chardev", "file,id=console,path="+qemuValue(console), "-serial", "chardev:console",
		"-device", "virtio-serial-pci,id=vser0")
	for i, name := range []string{PortOut, PortLog, PortStatus} {
		id := "port" + strconv.Itoa(i)
		chardev := "socket,id=" + id + ",path=" + qemuValue(c.Sockets[name])
		if _, ok := c.Sockets[name]; !ok {
			path, ok := c.Ports[name]
			if !ok {
				path = os.DevNull
			}
			chardev = "file,id=" + id + ",path=" + qemuValue(path)
		}
		args = append(args, "-chardev", chardev,
			"-device", "virtserialport,bus=vser0.0,chardev="+id+",name="+name)
	}
	return args, nil
}

// qemuValue escapes a value for QEMU's option syntax (a comma doubled).
func qemuValue(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// KVMUsable reports whether QEMU can use KVM here: /dev/kvm opens for
// reading and writing and the processor offers virtualization (vmx or
// svm). A /dev/kvm without either (a nested guest without them) takes
// the kernel minutes to boot, where QEMU's emulator takes seconds.
func KVMUsable() bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(info), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			for _, fl := range strings.Fields(v) {
				if fl == "vmx" || fl == "svm" {
					return true
				}
			}
		}
	}
	return false
}
