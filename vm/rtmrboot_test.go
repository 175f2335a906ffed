package vm_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/vm"
	"github.com/ampoule-run/ampoule/vm/measure"
)

// debianOVMF is the firmware the boot below runs: Debian's OVMF, the one
// OVMF the test setup installs.
const debianOVMF = "/usr/share/ovmf/OVMF.fd"

// TestRTMREventsOfABootedGuest boots hello's guest as vm build writes it
// (Debian's kernel, the initramfs with its code compiled ahead, the
// guest's command line, 1024 MiB) under Debian's OVMF with a software TPM
// (swtpm, SHA-384 bank), reads the firmware's TCG event log out of the
// guest's memory once the guest has powered off, and checks against it
// each event measure replays for RTMR1 and RTMR2 of that guest: the same
// firmware code extends the same events into PCR 4, 5 and 9 that a TDVF's
// TdTcg2Dxe extends into RTMR1 and RTMR2. The kernel's digest is of the
// kernel as QEMU patched it for this initramfs and memory. It skips where
// a VM cannot boot, or swtpm or OVMF is missing (the test setup installs
// them as root).
func TestRTMREventsOfABootedGuest(t *testing.T) {
	launch, kernel := bootPrerequisites(t)
	for _, tool := range []string{"swtpm", "swtpm_setup"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s (apt-get install swtpm swtpm-tools)", tool)
		}
	}
	if _, err := os.Stat(debianOVMF); err != nil {
		t.Skipf("no %s (apt-get install ovmf)", debianOVMF)
	}
	g, err := vm.Build(vm.BuildConfig{Bundle: testwasm.Example(t, "hello"), Profile: "debug", Launch: launch, Kernel: kernel, Precompile: true})
	if err != nil {
		t.Fatal(err)
	}
	dir, state := t.TempDir(), t.TempDir()
	if err := g.Write(dir); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("swtpm_setup", "--tpm2", "--tpmstate", state, "--pcr-banks", "sha256,sha384", "--overwrite").CombinedOutput(); err != nil {
		t.Fatalf("swtpm_setup: %v\n%s", err, out)
	}
	tpmSock, monSock := filepath.Join(state, "tpm.sock"), filepath.Join(state, "mon.sock")
	tpm := exec.Command("swtpm", "socket", "--tpm2", "--tpmstate", "dir="+state, "--ctrl", "type=unixio,path="+tpmSock)
	if err := tpm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tpm.Process.Kill(); tpm.Wait() })
	waitFor(t, 30*time.Second, func() bool { _, err := os.Stat(tpmSock); return err == nil }, "swtpm's socket")

	const memory = vm.DefaultMemoryMiB
	args, err := vm.Command(g, vm.QEMUConfig{Backend: vm.BackendTCG, Dir: dir, Firmware: debianOVMF, MemoryMiB: memory, KVM: vm.KVMUsable(),
		Console: filepath.Join(state, "console.log")})
	if err != nil {
		t.Fatal(err)
	}
	args = append(args, "-no-shutdown", "-chardev", "socket,id=chrtpm,path="+tpmSock, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
		"-device", "tpm-crb,tpmdev=tpm0", "-monitor", "unix:"+monSock+",server,nowait")
	qemu := exec.Command(args[0], args[1:]...)
	var qemuOut bytes.Buffer
	qemu.Stdout, qemu.Stderr = &qemuOut, &qemuOut
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qemu.Process.Kill(); qemu.Wait() })
	start := time.Now()
	// The guest runs hello and powers off; -no-shutdown keeps its memory.
	waitFor(t, 10*time.Minute, func() bool { return strings.Contains(monitor(t, monSock, "info status"), "shutdown") }, "the guest's power-off")
	t.Logf("booted %s with a %d-byte initramfs, powered off in %v (kvm: %v)", kernel, len(g.Initramfs), time.Since(start).Round(time.Second), vm.KVMUsable())
	dump := filepath.Join(state, "memory")
	monitor(t, monSock, fmt.Sprintf("pmemsave 0 %#x %q", memory<<20, dump))
	mem, err := os.ReadFile(dump)
	if err != nil {
		t.Fatalf("%v\nQEMU: %s", err, qemuOut.String())
	}
	log := firmwareLog(mem)
	if log == nil {
		console, _ := os.ReadFile(filepath.Join(state, "console.log"))
		t.Fatalf("no TCG event log with the initrd's event in the guest's memory\nconsole: %s", console)
	}

	events, err := measure.TDXBoot{Kernel: g.Kernel, Initrd: g.Initramfs, Cmdline: g.Cmdline, MemoryBytes: memory << 20}.Events()
	if err != nil {
		t.Fatal(err)
	}
	var theirs []measure.TCGEvent
	for _, e := range log {
		// PCR 2 to 6 and 8 to 15 are RTMR1 and RTMR2; TdTcg2Dxe extends
		// one separator, PCR 4's, where a TPM has one per PCR.
		if (e.PCR >= 2 && e.PCR <= 6 || e.PCR >= 8 && e.PCR <= 15) && (e.Type != measure.EVSeparator || e.PCR == 4) {
			theirs = append(theirs, e)
		}
	}
	if len(theirs) != len(events) {
		t.Fatalf("the log has %d events for RTMR1 and RTMR2, measure %d", len(theirs), len(events))
	}
	types := []uint32{measure.EVEFIBootServicesApp, measure.EVEFIAction, measure.EVSeparator, measure.EVEventTag, measure.EVEventTag, measure.EVEFIAction, measure.EVEFIAction}
	for i, e := range theirs {
		if wantRTMR := map[uint32]int{4: 1, 5: 1, 9: 2}[e.PCR]; e.Type != types[i] || events[i].RTMR != wantRTMR {
			t.Errorf("log event %d: PCR %d type %#x; measure's is RTMR%d %s", i, e.PCR, e.Type, events[i].RTMR, events[i].Name)
		}
		if !bytes.Equal(e.Digests[measure.AlgSHA384], events[i].Digest[:]) {
			t.Errorf("%s: measure %x, the booted guest's log %x", events[i].Name, events[i].Digest, e.Digests[measure.AlgSHA384])
		}
	}
	// This firmware measured into the TPM but extends no RTMR under TDX,
	// and vm measure says so rather than pin what would stay zero.
	m, err := vm.NewMeasurer(vm.MeasureConfig{TDXFirmware: debianOVMF})
	if err != nil {
		t.Fatal(err)
	}
	l, err := m.Measure(g)
	if err != nil || l.TDXRTMRs == nil || l.TDXRTMRs.RTMR1 != "" || !strings.Contains(strings.Join(l.TDXRTMRs.Unpinned, " "), "no TdTcg2Dxe") {
		t.Errorf("vm measure of Debian's OVMF: %+v %v", l, err)
	}
}

// firmwareLog is the crypto-agile event log in a guest's memory that
// holds the EFI stub's initrd event, or nil.
func firmwareLog(mem []byte) []measure.TCGEvent {
	for rest, off := mem, 0; ; {
		i := bytes.Index(rest, []byte("Spec ID Event03\x00"))
		if i < 0 {
			return nil
		}
		if at := off + i - 32; at >= 0 {
			if events, err := measure.ParseTCGEventLog(mem[at:]); err == nil {
				for _, e := range events {
					if e.PCR == 9 && bytes.Contains(e.Data, []byte("Linux initrd")) {
						return events
					}
				}
			}
		}
		rest, off = rest[i+16:], off+i+16
	}
}

// monitor sends one command to QEMU's human monitor on sock and returns
// what it printed up to its next prompt.
func monitor(t *testing.T, sock, cmd string) string {
	t.Helper()
	var c net.Conn
	waitFor(t, 30*time.Second, func() bool {
		var err error
		c, err = net.Dial("unix", sock)
		return err == nil
	}, "QEMU's monitor")
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	r := bufio.NewReader(c)
	prompt := func() string {
		var b strings.Builder
		for !strings.HasSuffix(b.String(), "(qemu) ") {
			ch, err := r.ReadByte()
			if err != nil {
				t.Fatalf("QEMU's monitor, %q: %v after %q", cmd, err, b.String())
			}
			b.WriteByte(ch)
		}
		return b.String()
	}
	prompt()
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		t.Fatal(err)
	}
	return prompt()
}

// waitFor polls ok every half second until it holds, failing after
// limit.
func waitFor(t *testing.T, limit time.Duration, ok func() bool, what string) {
	t.Helper()
	for end := time.Now().Add(limit); !ok(); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not there after %v", what, limit)
		}
	}
}
