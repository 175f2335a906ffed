package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/vm"
)

func cmdVM(fs *flag.FlagSet) action {
	var b vm.BuildConfig
	var q vm.QEMUConfig
	var out, memory, logOut string
	var dry bool
	fs.StringVar(&out, "o", "", "build: the directory to write the guest into")
	fs.StringVar(&b.Profile, "profile", "debug", "the profile the bundle runs under in the VM")
	fs.StringVar(&b.Launch, "launch", "", "a static launch executable (CGO_ENABLED=0), the guest's first process (default: this one)")
	fs.StringVar(&b.Kernel, "kernel", vm.DefaultKernel(), "the guest's kernel, a bzImage")
	fs.StringVar(&b.Modules, "modules", "", "the kernel's modules directory (default: /lib/modules/VERSION)")
	fs.StringVar(&q.Backend, "backend", vm.BackendTCG, "run: snp, tdx, or tcg (no confidential objects; the guest uses the simulator)")
	fs.StringVar(&q.Firmware, "firmware", "", "run: OVMF for snp, TDVF for tdx")
	fs.StringVar(&q.QEMU, "qemu", "qemu-system-x86_64", "run: the QEMU executable")
	fs.StringVar(&memory, "memory", "1G", "run: the guest's memory")
	fs.StringVar(&logOut, "log-out", "", "run: a new file for the encrypted log (staging, production)")
	fs.BoolVar(&dry, "dry-run", false, "run: print the QEMU command line and the measured inputs, start nothing")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		if len(in.Pos) != 1 || in.Sub == "build" && out == "" {
			return e.fail(errcode.Errorf(errcode.Usage, "vm %s takes one BUNDLE", in.Sub).WithHint("usage: launch " + c.doc.Usage))
		}
		if b.Bundle, b.Launch = in.Pos[0], orSelf(b.Launch); in.Sub == "build" {
			g, err := vm.Build(b)
			if err == nil {
				err = g.Write(out)
			}
			if err != nil {
				return e.fail(err)
			}
			fmt.Fprint(e.stdout, g.Digests())
			return 0
		}
		mem, err := vm.ParseMemory(memory)
		if err != nil {
			return e.fail(err)
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
		fmt.Fprint(e.stdout, res.Guest.Digests())
		fmt.Fprintln(e.stdout, vm.ShellLine(res.Command))
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
