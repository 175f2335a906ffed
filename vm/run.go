package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	// LogFile, when Log is nil, is a new file Run writes the encrypted log
	// to; an existing file is refused (E1021, the host's own input), never
	// overwritten. A dry run makes none.
	LogFile string
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

// WriteText writes what a dry run prints: the guest's measured inputs,
// the QEMU command line, and that the guest's files it names are gone.
func (r *RunResult) WriteText(w io.Writer) {
	r.Guest.WriteText(w)
	fmt.Fprintln(w, ShellLine(r.Command))
	fmt.Fprintln(w, "# the guest's files above were in a temporary directory, now removed: 'launch vm build -o DIR' keeps them")
}

// ShellLine is args as one line a POSIX shell reads back as the same
// args: what a dry run prints for a person to inspect or run by hand.
func ShellLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`;&|<>(){}*?[]#~!") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

// Run builds the guest in a temporary directory and boots it with QEMU,
// copying its lines and its log to the writers as the guest writes them. A VM that ends
// without an exit status is E1073, with the console's last lines.
func Run(ctx context.Context, c RunConfig) (*RunResult, error) {
	mc := MeasureConfig{VCPUs: c.QEMU.VCPUs, VCPUType: c.QEMU.CPU, MemoryMiB: c.QEMU.MemoryMiB}
	// A confidential guest is measured as it boots, which also refuses
	// an SEV-SNP firmware that would leave its kernel unmeasured, or a
	// TDVF without its metadata; each backend's firmware is its own.
	switch c.QEMU.Backend {
	case BackendSNP:
		mc.Firmware = c.QEMU.Firmware
	case BackendTDX:
		mc.TDXFirmware = c.QEMU.Firmware
	}
	g, err := BuildMeasured(c.Build, mc, false)
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
	// The run's lines and its log are streamed: QEMU connects each port to
	// a socket the host listens on, and the host copies what arrives as
	// the guest writes it. The status is a file, read once QEMU has exited.
	q.Ports = map[string]string{PortStatus: filepath.Join(dir, PortStatus)}
	q.Sockets = map[string]string{PortOut: filepath.Join(dir, "out.sock"), PortLog: filepath.Join(dir, "log.sock")}
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
	if c.Log == nil && c.LogFile != "" {
		f, err := os.OpenFile(c.LogFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return res, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err).Host()
		}
		defer f.Close()
		c.Log = f
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	streams, err := listenPorts(q.Sockets, map[string]io.Writer{PortOut: c.Out, PortLog: c.Log})
	if err != nil {
		return res, err
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var qemuErr bytes.Buffer
	cmd.Stderr = &qemuErr
	runErr := cmd.Run()
	streams.wait()
	if c.Console != nil {
		if f, err := os.Open(q.Console); err == nil {
			io.Copy(c.Console, f)
			f.Close()
		}
	}
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

// portStreams copies what the guest writes on its streamed ports to the
// host's writers while the VM runs.
type portStreams struct {
	listeners []net.Listener
	done      sync.WaitGroup
}

// listenPorts listens on each port's socket and copies the one connection
// QEMU makes to it into the port's writer (nil: discarded) as it arrives.
func listenPorts(sockets map[string]string, to map[string]io.Writer) (*portStreams, error) {
	s := &portStreams{}
	for name, path := range sockets {
		l, err := net.Listen("unix", path)
		if err != nil {
			s.close()
			return nil, errcode.Errorf(errcode.Internal, "the port %s's socket: %v", name, err)
		}
		s.listeners = append(s.listeners, l)
		w := to[name]
		if w == nil {
			w = io.Discard
		}
		s.done.Add(1)
		go func() {
			defer s.done.Done()
			conn, err := l.Accept()
			if err != nil {
				return // QEMU ended without connecting: wait closed the listener
			}
			defer conn.Close()
			io.Copy(w, conn)
		}()
	}
	return s, nil
}

func (s *portStreams) close() {
	for _, l := range s.listeners {
		l.Close()
	}
}

// wait, once QEMU has exited (which ends its connections), closes the
// listeners and waits for the copies to finish.
func (s *portStreams) wait() {
	s.close()
	s.done.Wait()
}
