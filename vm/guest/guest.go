// Package guest is launch as the first process of a VM that 'launch vm
// build' made: it mounts the kernel's file systems, loads the virtio and
// TEE guest modules, reads the init-data, runs the bundle under the
// init-data's profile with ampoule.Run (which refuses init-data its TEE
// was not launched with), and powers the VM off once the run's static
// exit status is written to the host.
package guest

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/vm"
	"github.com/ampoule-run/ampoule/vm/initdata"
)

// IsInit reports whether this process is a VM's first process.
func IsInit() bool { return os.Getpid() == 1 }

// Main is the VM's init: it never returns. Whatever happens, the host
// gets one exit status on the status port, the run's class (or, under
// debug, the workload's own code), and the VM powers off.
func Main() {
	status := run()
	if f, err := openPort(vm.PortStatus); err == nil {
		fmt.Fprintf(f, "%d\n", status)
		f.Sync()
		f.Close()
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Power-off does not return; if it did, a panic of PID 1 ends the VM.
	os.Exit(status)
}

// console is where the guest says what failed before its ports exist.
func console() io.Writer {
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY, 0); err == nil {
		return f
	}
	return os.Stderr
}

func run() int {
	fail := func(w io.Writer, err error) int {
		fmt.Fprint(w, errcode.Detailed(err))
		return errcode.From(err).Code.Class().ExitStatus()
	}
	if err := mounts(); err != nil {
		return fail(console(), err)
	}
	if err := loadModules(); err != nil {
		return fail(console(), err)
	}
	out, err := openPort(vm.PortOut)
	if err != nil {
		return fail(console(), err)
	}
	defer out.Close()
	raw, err := os.ReadFile("/" + vm.GuestInitData)
	if err != nil {
		return fail(out, errcode.Errorf(errcode.InitDataInvalid, "%v", err))
	}
	doc, err := initdata.Decode(raw)
	if err != nil {
		return fail(out, errcode.Errorf(errcode.InitDataInvalid, "%v", err))
	}
	p, err := profiles.Get(doc.Profile)
	if err != nil {
		return fail(out, err)
	}
	ref := ampoule.NewRef()
	if p.StaticErrors {
		// From here the profile is known: the host sees its static line.
		fail = func(w io.Writer, err error) int {
			fmt.Fprint(w, errcode.Static(err, ref))
			return errcode.From(err).Code.Class().ExitStatus()
		}
	}
	if p.Protected {
		sigs := make(chan os.Signal, 1)
		if err := ampoule.Protect(sigs); err != nil {
			return fail(out, err)
		}
	}
	cfg := ampoule.Config{
		Profile: doc.Profile, InitData: raw, NoCache: true, SimKey: "/run/sim.key", Ref: ref,
		Stdout: out, Stderr: out, Warnings: out,
		LogSink: func() (io.WriteCloser, error) { return openPort(vm.PortLog) },
	}
	if st, err := os.Stat("/" + vm.GuestCode); err == nil && st.IsDir() {
		// Compiled on the build host and measured with the initramfs.
		cfg.MeasuredCode = "/" + vm.GuestCode
	}
	res, err := ampoule.Run(context.Background(), "/"+vm.GuestBundle, cfg)
	if err != nil {
		return fail(out, err)
	}
	return int(min(res.ExitCode, 255))
}

// mounts mounts /proc, /sys, /dev (devtmpfs), /run (tmpfs) and, where the
// kernel has it, configfs (configfs-tsm's reports).
func mounts() error {
	for _, m := range []struct{ src, dir, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"tmpfs", "/run", "tmpfs"},
	} {
		if err := unix.Mount(m.src, m.dir, m.fs, unix.MS_NOSUID, ""); err != nil && err != unix.EBUSY {
			return errcode.Errorf(errcode.Internal, "mounting %s at %s: %v", m.fs, m.dir, err)
		}
	}
	// /dev/shm: a sealed mount's workspace and the runner's memfds need none,
	// but a memory-backed /dev/shm is where a workspace would go.
	os.MkdirAll("/dev/shm", 0o1777)
	unix.Mount("tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "")
	if err := unix.Mount("configfs", "/sys/kernel/config", "configfs", 0, ""); err != nil && err != unix.EBUSY && err != unix.ENOENT && err != unix.ENODEV {
		return errcode.Errorf(errcode.Internal, "mounting configfs: %v", err)
	}
	return nil
}

// loadModules loads the modules the initramfs lists, in order; one the
// kernel already has is no error.
func loadModules() error {
	order, err := os.ReadFile("/" + vm.GuestModuleOrder)
	if err != nil {
		return errcode.Errorf(errcode.Internal, "the module list: %v", err)
	}
	for _, name := range strings.Fields(string(order)) {
		f, err := os.Open(filepath.Join("/", vm.GuestModules, filepath.Base(name)))
		if err != nil {
			return errcode.Errorf(errcode.Internal, "module %s: %v", name, err)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		// ENODEV: a TEE driver on a machine without that TEE.
		if err != nil && err != unix.EEXIST && err != unix.ENODEV {
			return errcode.Errorf(errcode.Internal, "loading module %s: %v", name, err)
		}
	}
	return nil
}

// openPort opens the virtio serial port the host named name, waiting up to
// 10 s for the driver to probe it. The port is in raw mode: it is not a
// terminal.
func openPort(name string) (*os.File, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ports, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, p := range ports {
			if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == name {
				dev := filepath.Base(filepath.Dir(p))
				if f, err := os.OpenFile("/dev/"+dev, os.O_WRONLY, 0); err == nil {
					return f, nil
				} else if !os.IsNotExist(err) {
					return nil, errcode.Errorf(errcode.Internal, "the port %s: %v", name, err)
				}
			}
		}
		if time.Now().After(deadline) {
			return nil, errcode.Errorf(errcode.Internal, "no virtio serial port named %s (%d ports)", name, len(ports))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
