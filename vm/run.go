package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
)

// RunConfig is a VM run: a guest built for a bundle, booted on a backend.
type RunConfig struct {
	Build BuildConfig
	QEMU  QEMUConfig
	// Out receives the guest's lines (launch's own and, under debug, the
	// workload's output); Log the encrypted log, when set.
	Out io.Writer
	Log io.Writer
	// Console, when set, receives the serial console (the kernel's lines).
	Console io.Writer
	// Timeout bounds the VM's whole life (default 10 minutes).
	Timeout time.Duration
	// DryRun builds the guest and returns its command line without
	// starting QEMU. The command line's paths are in a temporary
	// directory Run removes before it returns.
	DryRun bool
}

// RunResult is what a VM run gives the host.
type RunResult struct {
	Guest   *Guest
	Command []string
	// Status is the guest's exit status: the run's class, or under debug
	// the workload's own code.
	Status int
}

// Run builds the guest in a temporary directory and boots it with QEMU,
// copying its ports to the writers once it has powered off. A VM that ends
// without an exit status is E1073, with the console's last lines.
func Run(ctx context.Context, c RunConfig) (*RunResult, error) {
	mc := MeasureConfig{Firmware: c.QEMU.Firmware, VCPUs: c.QEMU.VCPUs, VCPUType: c.QEMU.CPU}
	// An SEV-SNP guest is measured as it boots, which also refuses a
	// firmware that would leave its kernel unmeasured.
	g, err := BuildMeasured(c.Build, mc, c.QEMU.Backend == BackendSNP && c.QEMU.Firmware != "")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ampoule-vm-")
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "%v", err)
	}
	defer os.RemoveAll(dir)
	if err := g.Write(dir); err != nil {
		return nil, err
	}
	q := c.QEMU
	q.Dir = dir
	if q.Kernel == "" {
		q.Kernel = c.Build.Kernel
	}
	q.Console = filepath.Join(dir, "console")
	q.Ports = map[string]string{}
	for _, p := range []string{PortOut, PortLog, PortStatus} {
		q.Ports[p] = filepath.Join(dir, p)
	}
	args, err := Command(g, q)
	if err != nil {
		return nil, err
	}
	res := &RunResult{Guest: g, Command: args}
	if c.DryRun {
		return res, nil
	}
	if _, err := exec.LookPath(args[0]); err != nil {
		return res, errcode.Errorf(errcode.VMBackendUnavailable, "%v", err).Host()
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var qemuErr bytes.Buffer
	cmd.Stderr = &qemuErr
	runErr := cmd.Run()
	copyFile := func(name string, w io.Writer) {
		if w == nil {
			return
		}
		if f, err := os.Open(name); err == nil {
			io.Copy(w, f)
			f.Close()
		}
	}
	copyFile(q.Ports[PortOut], c.Out)
	copyFile(q.Ports[PortLog], c.Log)
	copyFile(q.Console, c.Console)
	status, err := os.ReadFile(q.Ports[PortStatus])
	n, convErr := strconv.Atoi(strings.TrimSpace(string(status)))
	if err != nil || convErr != nil || n < 0 || n > 255 {
		console, _ := os.ReadFile(q.Console)
		why := "QEMU ended"
		if runErr != nil {
			why = fmt.Sprintf("QEMU: %v", runErr)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			why = fmt.Sprintf("the VM ran longer than %v", timeout)
		}
		return res, errcode.Errorf(errcode.VMBackendUnavailable, "%s without the guest's exit status; QEMU said: %s; the console's last lines:\n%s",
			why, strings.TrimSpace(qemuErr.String()), tail(console, 12)).Host()
	}
	res.Status = n
	return res, nil
}

// tail is the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
