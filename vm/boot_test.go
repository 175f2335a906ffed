package vm_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/vm"
)

// TestBootTCG boots a bundle's guest with Debian's kernel under QEMU (KVM
// where the processor offers it, else QEMU's emulator), with no
// confidential object: the guest's launch runs the bundle on the simulator,
// says so, and the module's line and the exit status come back over the
// virtio serial ports. It needs root (the test setup installs
// qemu-system-x86 and linux-image-amd64 from apt where missing) and skips
// where QEMU or a kernel is not here.
func TestBootTCG(t *testing.T) {
	t.Parallel()
	launch, kernel := bootPrerequisites(t)
	// The committed tiny module: hello's Go module takes minutes to
	// compile under QEMU's emulator here (a /dev/kvm without vmx), tiny
	// one instant.
	bundle := filepath.Join(testwasm.Root(t), "testdata", "tiny")
	start := time.Now()
	var stdout, stderr bytes.Buffer
	run := exec.Command(launch, "vm", "run", "--backend", "tcg", "--launch", launch, "--kernel", kernel, bundle)
	run.Stdout, run.Stderr = &stdout, &stderr
	err := run.Run()
	t.Logf("booted and ran in %v (kvm: %v)", time.Since(start).Round(time.Second), vm.KVMUsable())
	if err != nil {
		t.Fatalf("%v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"hello from a tiny module", "backend sim is a software simulator", "nothing binds the init-data"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the guest's lines lack %q:\n%s", want, stdout.String())
		}
	}
}

// bootPrerequisites skips where a VM cannot boot here, and builds a
// static launch.
func bootPrerequisites(t *testing.T) (launch, kernel string) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a VM (about 45 s under emulation)")
	}
	if os.Getuid() != 0 {
		t.Skip("needs root: the guest's kernel modules and /boot are root's, and CI runs as root")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("no qemu-system-x86_64 (apt-get install qemu-system-x86)")
	}
	kernel = vm.DefaultKernel()
	if kernel == "" {
		t.Skip("no /boot/vmlinuz-* (apt-get install linux-image-amd64)")
	}
	staticOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ampoule-vm-test-")
		if err != nil {
			staticErr = err
			return
		}
		staticDir = dir
		staticLaunch = filepath.Join(dir, "launch")
		build := exec.Command("go", "build", "-o", staticLaunch, "./cmd/launch")
		build.Dir, build.Env = testwasm.Root(t), append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			staticErr = fmt.Errorf("building a static launch: %v\n%s", err, out)
		}
	})
	if staticErr != nil {
		t.Fatal(staticErr)
	}
	return staticLaunch, kernel
}

// The static launch the boot tests share: built once per test binary (the
// boot tests run in parallel, and two builds at once would each compile
// it), removed by TestMain.
var (
	staticOnce              sync.Once
	staticDir, staticLaunch string
	staticErr               error
)

func TestMain(m *testing.M) {
	code := m.Run()
	staticOnce.Do(func() {})
	if staticDir != "" {
		os.RemoveAll(staticDir)
	}
	os.Exit(code)
}

// TestBootTCGStaging boots a staging guest whose workload traps: the host
// sees only the static line and the class's exit status (1), and the
// encrypted log the guest sends over its port decrypts with the tenant's
// identity and holds the trap.
func TestBootTCGStaging(t *testing.T) {
	t.Parallel()
	launch, kernel := bootPrerequisites(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "tenant.key")
	recipient, err := exec.Command(launch, "keygen", "-o", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "trap")
	os.Mkdir(bundle, 0o755)
	os.WriteFile(filepath.Join(bundle, "ampoule.toml"), []byte("name = \"trap\"\nversion = \"1.0.0\"\nprofiles = [\"staging\"]\nlog_recipient = \""+strings.TrimSpace(string(recipient))+"\"\n"), 0o644)
	module, err := os.ReadFile(filepath.Join(testwasm.Root(t), "wasm-examples", "hostile", "divide-by-zero.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bundle, "module.wasm"), module, 0o644)
	logFile := filepath.Join(dir, "run.log")
	var stdout, stderr bytes.Buffer
	run := exec.Command(launch, "vm", "run", "--profile", "staging", "--backend", "tcg", "--launch", launch, "--kernel", kernel, "--log-out", logFile, bundle)
	run.Stdout, run.Stderr = &stdout, &stderr
	err = run.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("%v, want exit status 1\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !regexp.MustCompile(`(?m)^launch: E2001 workload-trap \(ref [0-9a-f]{16}\)$`).MatchString(stdout.String()) || strings.Contains(stdout.String(), "div") {
		t.Errorf("the host's lines are not the static ones:\n%s", stdout.String())
	}
	plain, err := exec.Command(launch, "logs", "decrypt", "--identity", key, logFile).CombinedOutput()
	if err != nil || !strings.Contains(string(plain), "log intact") || !strings.Contains(string(plain), "E2001") {
		t.Errorf("the log: %v\n%s", err, plain)
	}
}
