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
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/vm"
)

// TestBootTCG boots hello's guest with Debian's kernel under QEMU (KVM
// where the processor offers it, else QEMU's emulator), with no
// confidential object: the guest's launch runs the bundle on the
// simulator, says so, and hello's greeting and the exit status come back
// over the virtio serial ports. Hello's 2.5 MiB module is compiled on this
// host into the initramfs (compiling it in the emulated guest took over
// 200 s). It needs root (the test setup installs qemu-system-x86 and
// linux-image-amd64 from apt where missing) and skips where QEMU or a
// kernel is not here.
//
// The boot tests run one at a time (none is parallel): three emulated
// guests at once on two cores starve each other's compile bounds.
func TestBootTCG(t *testing.T) {
	launch, kernel := bootPrerequisites(t)
	bundle := testwasm.Example(t, "hello")
	start := time.Now()
	var stdout, stderr bytes.Buffer
	run := exec.Command(launch, "vm", "run", "--backend", "tcg", "--launch", launch, "--kernel", kernel, bundle)
	run.Stdout, run.Stderr = &stdout, &stderr
	err := run.Run()
	t.Logf("built, booted and ran in %v (kvm: %v)", time.Since(start).Round(time.Second), vm.KVMUsable())
	if err != nil {
		t.Fatalf("%v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"Hello, tenant, from inside wazero!\n", `argv: ["hello" "tenant"]`, "backend sim is a software simulator", "nothing binds the init-data"} {
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
	return staticLaunchFor(t), kernel
}

// staticLaunchFor builds a static launch once per test binary.
func staticLaunchFor(t *testing.T) string {
	t.Helper()
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
	return staticLaunch
}

// TestBuildPrecompiled: a guest built with its module compiled ahead
// carries wazero's entry for the module and the inspection's verdict in
// GuestCode, root's alone, and says for which processor features; two
// such builds are byte-identical (the tenant rebuilds the initramfs to
// check its measurement), and differ from a build without the code.
func TestBuildPrecompiled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a static launch and compiles hello")
	}
	kernel := vm.DefaultKernel()
	if kernel == "" {
		t.Skip("no /boot/vmlinuz-* (apt-get install linux-image-amd64)")
	}
	cfg := vm.BuildConfig{Bundle: testwasm.Example(t, "hello"), Profile: "debug", Launch: staticLaunchFor(t), Kernel: kernel, Precompile: true}
	a, err := vm.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := vm.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Initramfs, b.Initramfs) {
		t.Error("two builds with the code compiled ahead differ")
	}
	module := testwasm.Module(t, "hello")
	if a.Code < int64(len(module)) || a.Features != sandbox.HostCompileFeatures() {
		t.Errorf("%d bytes of code for a module of %d, features %v", a.Code, len(module), a.Features)
	}
	entry := regexp.MustCompile(`code/wazero-[^/\x00]+-amd64-linux/[0-9a-f]{64}\x00`)
	if !entry.Match(a.Initramfs) || !bytes.Contains(a.Initramfs, []byte("code/inspected-")) {
		t.Error("the initramfs lacks wazero's entry or the verdict under code/")
	}
	if !strings.Contains(a.Digests(), "compiled ahead, for x86-64 with "+a.Features.String()) {
		t.Errorf("the digests do not say what was compiled:\n%s", a.Digests())
	}
	cfg.Precompile = false
	plain, err := vm.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Code != 0 || bytes.Contains(plain.Initramfs, []byte("code/wazero-")) || plain.HostData() != a.HostData() {
		t.Error("a build without the code compiled ahead has code, or another init-data")
	}
}

// The static launch the boot tests share: built once per test binary,
// removed by TestMain.
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

// TestBootTCGStaging boots hello's guest under staging: the host sees
// neither the greeting nor anything but the fixed warnings, the exit
// status is 0, and the encrypted log the guest sends over its port
// decrypts with the tenant's identity and holds the greeting and that the
// module's code came from the initramfs (the compile a cache hit: staging
// refuses the host's unauthenticated disk cache, and the initramfs is not
// the host's disk but part of the measured image).
func TestBootTCGStaging(t *testing.T) {
	launch, kernel := bootPrerequisites(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "tenant.key")
	recipient, err := exec.Command(launch, "keygen", "-o", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	bundle := testwasm.CopyBundle(t, testwasm.Example(t, "hello"), "name = \"hello\"\nversion = \"1.0.0\"\nargs = [\"tenant\"]\nprofiles = [\"staging\"]\nlog_recipient = \""+
		strings.TrimSpace(string(recipient))+"\"\n[env]\nGREETING = \"Hello\"\n[limits]\nmemory = \"64MiB\"\nwall_time = \"60s\"\n")
	logFile := filepath.Join(dir, "run.log")
	var stdout, stderr bytes.Buffer
	run := exec.Command(launch, "vm", "run", "--profile", "staging", "--backend", "tcg", "--launch", launch, "--kernel", kernel, "--log-out", logFile, bundle)
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("%v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if !strings.HasPrefix(line, "launch: warning: backend sim ") {
			t.Errorf("the host sees a line that is not a fixed warning: %q", line)
		}
	}
	plain, err := exec.Command(launch, "logs", "decrypt", "--identity", key, logFile).CombinedOutput()
	if err != nil || !strings.Contains(string(plain), "log intact") || !strings.Contains(string(plain), "Hello, tenant, from inside wazero!") {
		t.Errorf("the log: %v\n%s", err, plain)
	}
	if !regexp.MustCompile(`compiled module=module.wasm bytes=\d+ cache=hit`).Match(plain) {
		t.Errorf("the log does not say the code came from the initramfs:\n%s", plain)
	}
}

// TestBootTCGLogStreams: the encrypted log reaches --log-out while the VM
// runs, not once it has exited. The workload sleeps until its wall time
// (20 s) ends it: the log's first records (the header, the evidence) are
// in the file while launch still waits on QEMU; then the host sees the
// static line and the class's exit status (4), and the whole log decrypts
// and holds the limit.
func TestBootTCGLogStreams(t *testing.T) {
	launch, kernel := bootPrerequisites(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "tenant.key")
	recipient, err := exec.Command(launch, "keygen", "-o", key).Output()
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "sleeper")
	os.Mkdir(bundle, 0o755)
	os.WriteFile(filepath.Join(bundle, "ampoule.toml"), []byte("name = \"sleeper\"\nversion = \"1.0.0\"\nprofiles = [\"staging\"]\nlog_recipient = \""+
		strings.TrimSpace(string(recipient))+"\"\n[limits]\nwall_time = \"20s\"\n"), 0o644)
	os.WriteFile(filepath.Join(bundle, "module.wasm"), testwasm.HostileModule(t, "sleep-forever"), 0o644)
	logFile := filepath.Join(dir, "run.log")
	var stdout, stderr bytes.Buffer
	run := exec.Command(launch, "vm", "run", "--profile", "staging", "--backend", "tcg", "--launch", launch, "--kernel", kernel, "--log-out", logFile, bundle)
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	var whileRunning int64
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case err = <-exited:
			break wait
		case <-tick.C:
			if st, err := os.Stat(logFile); err == nil && st.Size() > 0 && whileRunning == 0 {
				whileRunning = st.Size()
			}
		}
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 4 {
		t.Fatalf("%v, want exit status 4\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	final, _ := os.Stat(logFile)
	t.Logf("the log had %d bytes while the VM ran, %d at the end", whileRunning, final.Size())
	if whileRunning == 0 || whileRunning >= final.Size() {
		t.Errorf("the log was not streamed: %d bytes while the VM ran, %d at the end", whileRunning, final.Size())
	}
	if !regexp.MustCompile(`(?m)^launch: E4002 wall-time-limit \(ref [0-9a-f]{16}\)$`).MatchString(stdout.String()) {
		t.Errorf("the host's lines are not the static ones:\n%s", stdout.String())
	}
	plain, err := exec.Command(launch, "logs", "decrypt", "--identity", key, logFile).CombinedOutput()
	if err != nil || !strings.Contains(string(plain), "log intact") || !strings.Contains(string(plain), "E4002") {
		t.Errorf("the log: %v\n%s", err, plain)
	}
}
