package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/ampoule-run/ampoule/ociimage"
	"github.com/ampoule-run/ampoule/vm"
)

func cmdVM(fs *flag.FlagSet) action {
	var b vm.BuildConfig
	var q vm.QEMUConfig
	var out, memory, logOut, tdxFirmware string
	var dry bool
	fs.StringVar(&out, "o", "", "build: the directory to write the guest into")
	fs.StringVar(&b.Profile, "profile", "debug", "the profile the bundle runs under in the VM")
	fs.StringVar(&b.Launch, "launch", "", "a static launch executable (CGO_ENABLED=0), the guest's first process (default: this one)")
	fs.StringVar(&b.Kernel, "kernel", vm.DefaultKernel(), "the guest's kernel, a bzImage")
	fs.StringVar(&b.Modules, "modules", "", "the kernel's modules directory (default: /lib/modules/VERSION)")
	fs.StringVar(&q.Backend, "backend", vm.BackendTCG, "run: snp, tdx, or tcg (no confidential objects; the guest uses the simulator)")
	fs.StringVar(&q.Firmware, "firmware", "", "OVMF for snp (build and measure: the SEV-SNP OVMF measured), TDVF for tdx")
	fs.StringVar(&tdxFirmware, "tdx-firmware", "", "build, measure: the TDVF (an OVMF with TDVF metadata) whose TDX MRTDs, and the RTMRs of its boot of the guest, are measured")
	fs.IntVar(&q.VCPUs, "vcpus", vm.DefaultVCPUs, "the VM's vCPUs, which an SEV-SNP launch measures")
	fs.StringVar(&q.CPU, "vcpu-type", vm.DefaultVCPUType, "the SEV-SNP vCPU type (QEMU -cpu), which the launch measures")
	fs.StringVar(&q.QEMU, "qemu", "qemu-system-x86_64", "run: the QEMU executable")
	fs.StringVar(&memory, "memory", "1G", "run: the guest's memory; build, measure: the TD's, which its RTMR1 depends on")
	fs.StringVar(&logOut, "log-out", "", "run: a new file for the encrypted log (staging, production)")
	fs.BoolVar(&b.Precompile, "precompile", true, "build, run, measure: compile the module here with the guest's launch and carry the code in the measured initramfs")
	fs.BoolVar(&dry, "dry-run", false, "run: print the QEMU command line and the measured inputs, start nothing")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		mem, err := vm.ParseMemory(memory)
		if err != nil {
			return e.fail(err)
		}
		m := vm.MeasureConfig{Firmware: q.Firmware, TDXFirmware: tdxFirmware, VCPUs: q.VCPUs, VCPUType: q.CPU, MemoryMiB: mem}
		if b.Bundle, b.Launch = in.Pos[0], orSelf(b.Launch); in.Sub == "build" || in.Sub == "measure" {
			g, err := vm.BuildMeasured(b, m, in.Sub == "measure")
			if err == nil && in.Sub == "build" {
				err = g.Write(out)
			}
			if err != nil {
				return e.fail(err)
			}
			g.WriteText(e.stdout)
			return 0
		}
		q.MemoryMiB, q.KVM = mem, vm.KVMUsable()
		return e.vmRun(ctx, vm.RunConfig{Build: b, QEMU: q, Out: e.stdout, DryRun: dry, LogFile: logOut})
	}
}

// vmRun boots the VM, or under --dry-run prints its command line and the
// measured inputs; the exit status is the guest's.
func (e *cliEnv) vmRun(ctx context.Context, c vm.RunConfig) int {
	res, err := vm.Run(ctx, c)
	if err != nil {
		return e.fail(err)
	}
	if c.DryRun {
		res.WriteText(e.stdout)
	}
	return res.Status
}

// orSelf is path, or this executable's.
func orSelf(path string) string {
	if path == "" {
		path, _ = os.Executable()
	}
	return path
}

func cmdImage(fs *flag.FlagSet) action {
	out := fs.String("o", "", "build: the new OCI image layout tar to write")
	name := fs.String("name", "", "build: the image's reference, as ctr image import names it (example.com/hello:1.0)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		digest, err := ociimage.Build(in.Pos[0], *out, *name)
		if err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "%s %s %s\n", *out, *name, digest)
		return 0
	}
}
