package ctrshim_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/ctrshim"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/ociimage"
	"github.com/ampoule-run/ampoule/sandbox"
)

// cluster is a containerd of the test's own: config, root, state and
// sockets in a temporary directory, the shim built from this tree on its
// PATH, stopped when the test ends.
type cluster struct {
	t        testing.TB
	dir      string
	sock     string
	shim     string
	events   *testwasm.SyncBuffer
	stopEvts func()
	// ns is the namespace ctr acts in: containerd's default, or CRI's
	// k8s.io.
	ns string
}

// needContainerd skips unless root, and installs Debian's containerd and
// runc when they are missing (as make test does for CI).
func needContainerd(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("skipped: containerd, and the shim mounting each container's root filesystem, need root (CI runs as root)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("skipped: containerd shims are Linux only")
	}
	for _, bin := range []string{"containerd", "ctr", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			out, err := exec.Command("sh", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc").CombinedOutput()
			if err != nil {
				t.Fatalf("installing Debian's containerd and runc: %v\n%s", err, out)
			}
			break
		}
	}
}

func startCluster(t testing.TB, env ...string) *cluster {
	return startClusterWith(t, false, "", env...)
}

// testLinger is how long the tests' warm shims stay after their last
// task: short, for the leak checks to see them go.
const testLinger = "AMPOULE_SHIM_LINGER=1s"

// startClusterWith starts the test's containerd; with cri, its CRI plugin
// too, configured by deploy/kubernetes's fragment (the ampoule runtime
// beside runc) and this test's own directories, with no CNI: the test's
// pods use the node's network.
// extra is added to the config (more of CRI's runtimes); env to
// containerd's environment, which its shims inherit (testLinger unless env
// names the linger).
func startClusterWith(t testing.TB, cri bool, extra string, env ...string) *cluster {
	needContainerd(t)
	for _, m := range []string{"../wasm-examples/hello/module.wasm", "../wasm-examples/crash/module.wasm"} {
		if _, err := os.Stat(m); err != nil {
			t.Fatalf("%s is missing: run 'make examples' first", m)
		}
	}
	dir, err := os.MkdirTemp("", "ctr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	shim := filepath.Join(bin, "containerd-shim-ampoule-v1")
	if out, err := exec.Command("go", "build", "-o", shim, "../cmd/containerd-shim-ampoule-v1").CombinedOutput(); err != nil {
		t.Fatalf("building the shim: %v\n%s", err, out)
	}
	c := &cluster{t: t, dir: dir, sock: filepath.Join(dir, "c.sock"), shim: shim}
	cfg := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\n[grpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock)
	if cri {
		cfg += criConfig(t, dir) + extra
	} else {
		cfg = "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n" + cfg
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	shimLog := filepath.Join(dir, "shim.log")
	cmd.Env = append(append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), testLinger, ctrshim.EnvLog+"="+shimLog), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		// After a failure, what containerd did not clean up: the test's
		// own shims (by the binary it built) and mounts beneath its dir.
		for _, pid := range c.shims() {
			if p, err := strconv.Atoi(pid); err == nil {
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
		for _, m := range c.mounts() {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
		checkShimLog(t, shimLog)
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Logf("containerd's log:\n%s", tail(b, 4000))
		}
	})
	for i := 0; ; i++ {
		if err := exec.Command("ctr", "-a", c.sock, "version").Run(); err == nil {
			break
		}
		if i > 100 {
			t.Fatal("containerd did not start in 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every event containerd sees, to check the shim published them.
	ctx, cancel := context.WithCancel(context.Background())
	ev := exec.CommandContext(ctx, "ctr", "-a", c.sock, "events")
	c.events = &testwasm.SyncBuffer{}
	ev.Stdout = c.events
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	c.stopEvts = func() { cancel(); ev.Wait() }
	t.Cleanup(c.stopEvts)
	return c
}

// checkShimLog fails the test if a warm shim of it crashed or the Go
// runtime found it broken: a panic, a fatal error (concurrent map writes
// among them), or a race report. Containerd sees such a shim only as
// disconnected, and every task it held ends with it.
func checkShimLog(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return // no warm shim wrote anything
	}
	for _, bad := range []string{"panic:", "fatal error:", "DATA RACE"} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("a shim's log has %q:\n%s", bad, tail(b, 4000))
			return
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// ctr runs ctr against the cluster and returns its stdout, stderr and exit
// status.
func (c *cluster) ctr(args ...string) (string, string, int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pre := []string{"-a", c.sock}
	if c.ns != "" {
		pre = append(pre, "-n", c.ns)
	}
	cmd := exec.CommandContext(ctx, "ctr", append(pre, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("ctr %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// image builds a bundle of module and manifest into an image named ref
// with launch image build's library, and imports it.
func (c *cluster) image(ref, module, manifest string) {
	c.t.Helper()
	b := filepath.Join(c.dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref))
	os.Mkdir(b, 0o755)
	data, err := os.ReadFile(module)
	if err != nil {
		c.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(b, "module.wasm"), data, 0o644)
	os.WriteFile(filepath.Join(b, "ampoule.toml"), []byte(manifest), 0o644)
	if _, err := ociimage.Build(b, b+".tar", ref); err != nil {
		c.t.Fatal(err)
	}
	c.importImage(b + ".tar")
}

// imageCLI builds the bundle directory into an image named ref with the
// launch command itself, 'launch image build', as a tenant does, and
// imports it.
func (c *cluster) imageCLI(ref, bundle string) {
	c.t.Helper()
	launch := filepath.Join(c.dir, "bin", "launch")
	if out, err := exec.Command("go", "build", "-o", launch, "../cmd/launch").CombinedOutput(); err != nil {
		c.t.Fatalf("building launch: %v\n%s", err, out)
	}
	tar := filepath.Join(c.dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if out, err := exec.Command(launch, "image", "build", bundle, "-o", tar, "--name", ref).CombinedOutput(); err != nil {
		c.t.Fatalf("launch image build: %v\n%s", err, out)
	}
	c.importImage(tar)
}

// importImage imports an image layout tar with ctr.
func (c *cluster) importImage(tar string) {
	c.t.Helper()
	// The platform is named: ctr's import filters index.json's entries by
	// the node's platform otherwise ("image might be filtered out"). Once
	// imported, the image's target is its wasi/wasm manifest itself, not
	// an index, and containerd 1.6 matches platforms only among an index's
	// entries, so CRI on a linux node takes it (TestCRI).
	args := []string{"image", "import", "--platform", "wasi/wasm", tar}
	if out, errs, code := c.ctr(args...); code != 0 {
		c.t.Fatalf("ctr image import: %d\n%s%s", code, out, errs)
	}
}

func (c *cluster) run(id, ref string, annotations ...string) (string, string, int) {
	args := []string{"run", "--rm", "--platform", "wasi/wasm", "--runtime", "io.containerd.ampoule.v1"}
	for _, a := range annotations {
		args = append(args, "--annotation", a)
	}
	return c.ctr(append(args, ref, id)...)
}

// shims are the processes running the shim binary this test built, its
// runners too.
func (c *cluster) shims() []string { return append(c.procs(false), c.procs(true)...) }

// runners are the shim binary's processes that are runners.
func (c *cluster) runners() []string { return c.procs(true) }

// servers are the shim binary's processes that are shims, not runners.
func (c *cluster) servers() []string { return c.procs(false) }

func (c *cluster) procs(runners bool) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || exe != c.shim {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.Contains(string(cmdline), "\x00"+sandbox.RunnerArg) == runners {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// mounts are the mount points beneath the test's directory.
func (c *cluster) mounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) > 4 && strings.HasPrefix(fs[4], c.dir) {
			out = append(out, fs[4])
		}
	}
	return out
}

const helloManifest = `name = "hello"
args = ["tenant"]
profiles = ["debug", "staging", "production"]
[env]
GREETING = "Hello"
`

// One containerd, the real one Debian ships, runs the shim through ctr:
// the hello example's image as 'launch image build' wrote it, its greeting, exit codes under debug and as static classes under
// staging, the encrypted log as the container's stdout, the events, and a
// kill of a guest asleep in poll_oneoff; no shim and no mount is left.
func TestContainerd(t *testing.T) {
	c := startCluster(t)
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	// The hello example as 'launch image build' writes it.
	c.imageCLI("example.com/hello:1", "../wasm-examples/hello")
	c.image("example.com/hello-logged:1", "../wasm-examples/hello/module.wasm",
		"log_recipient = \""+id.Recipient().String()+"\"\n"+helloManifest)
	c.image("example.com/exit3:1", "../wasm-examples/crash/module.wasm",
		"name = \"crash\"\nargs = [\"exit\", \"3\"]\nprofiles = [\"debug\", \"staging\"]\n")
	c.image("example.com/sleep:1", "../wasm-examples/hostile/sleep-forever.wasm",
		"name = \"sleep\"\nprofiles = [\"debug\"]\n[limits]\nwall_time = \"200s\"\n")

	t.Run("hello", func(t *testing.T) {
		out, errs, code := c.run("hello", "example.com/hello:1", "run.ampoule.profile=debug", "run.ampoule.backend=sim")
		if code != 0 || !strings.Contains(out, "Hello, tenant, from inside wazero!") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
		}
		if !strings.Contains(errs, "insecure") {
			t.Errorf("the simulator's warning is not on stderr: %q", errs)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		if out, errs, code := c.run("exit3", "example.com/exit3:1", "run.ampoule.profile=debug", "run.ampoule.backend=sim"); code != 3 {
			t.Fatalf("exit %d, want 3\nstdout: %s\nstderr: %s", code, out, errs)
		}
	})
	t.Run("static code", func(t *testing.T) {
		out, errs, code := c.run("exit3-staging", "example.com/exit3:1", "run.ampoule.profile=staging", "run.ampoule.backend=sim")
		if code != 1 || !strings.Contains(errs, "launch: E2002 workload-exit (ref ") {
			t.Fatalf("exit %d, want 1 with E2002\nstdout: %q\nstderr: %q", code, out, errs)
		}
		// Production takes no simulator: refused by policy, no wasm run.
		_, errs, code = c.run("hello-prod", "example.com/hello:1", "run.ampoule.backend=sim")
		if code != 3 || !strings.Contains(errs, "launch: ") {
			t.Fatalf("production on the simulator: exit %d\nstderr: %q", code, errs)
		}
	})
	t.Run("encrypted log", func(t *testing.T) {
		out, errs, code := c.run("hello-staging", "example.com/hello-logged:1", "run.ampoule.profile=staging", "run.ampoule.backend=sim")
		if code != 0 || strings.Contains(out, "Hello") {
			t.Fatalf("exit %d; the greeting must not be plain\nstdout: %.300q\nstderr: %q", code, out, errs)
		}
		if !strings.HasPrefix(out, logging.TextMagic+"\n") || strings.ContainsAny(out, "\r\x00") {
			t.Errorf("the container's stdout is not the log's text form: %.100q", out)
		}
		r, err := logging.NewReader(strings.NewReader(out), id)
		if err != nil {
			t.Fatalf("the container's stdout is not the tenant's log: %v", err)
		}
		var plain string
		for {
			rec, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("reading the log: %v", err)
			}
			plain += string(rec.Message)
		}
		if !strings.Contains(plain, "Hello, tenant, from inside wazero!") {
			t.Fatalf("the decrypted log lacks the greeting: %q", plain)
		}
	})
	t.Run("runtime options", func(t *testing.T) {
		// ctr's --runtime-config-path is a runtime's ConfigPath: a key
		// that would choose what runs is refused, and nothing runs.
		bad := filepath.Join(c.dir, "bad-shim.toml")
		os.WriteFile(bad, []byte("Profile = \"debug\"\n"), 0o600)
		_, errs, code := c.ctr("run", "--rm", "--platform", "wasi/wasm", "--runtime", "io.containerd.ampoule.v1",
			"--runtime-config-path", bad, "example.com/hello:1", "opts-bad")
		c.ctr("container", "rm", "opts-bad")
		if code == 0 || !strings.Contains(errs, "E1080 shim-options-invalid") || !strings.Contains(errs, "unknown key Profile") {
			t.Errorf("a Profile key in the runtime options: exit %d\nstderr: %s", code, errs)
		}
		good := filepath.Join(c.dir, "shim.toml")
		os.WriteFile(good, []byte("Linger = \"0s\"\n"), 0o600)
		out, errs, code := c.ctr("run", "--rm", "--platform", "wasi/wasm", "--runtime", "io.containerd.ampoule.v1",
			"--runtime-config-path", good, "--annotation", "run.ampoule.profile=debug", "--annotation", "run.ampoule.backend=sim",
			"example.com/hello:1", "opts-good")
		if code != 0 || !strings.Contains(out, "Hello, tenant, from inside wazero!") {
			t.Errorf("runtime options with a linger: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
		}
	})
	t.Run("kill in poll_oneoff", func(t *testing.T) {
		if out, errs, code := c.ctr("run", "-d", "--platform", "wasi/wasm", "--runtime", "io.containerd.ampoule.v1",
			"--annotation", "run.ampoule.profile=debug", "--annotation", "run.ampoule.backend=sim", "example.com/sleep:1", "sleep"); code != 0 {
			t.Fatalf("ctr run -d: %d\n%s%s", code, out, errs)
		}
		time.Sleep(300 * time.Millisecond) // into poll_oneoff's day-long sleep
		start := time.Now()
		if _, errs, code := c.ctr("task", "kill", "-s", "SIGKILL", "sleep"); code != 0 {
			t.Fatalf("ctr task kill: %s", errs)
		}
		for {
			out, _, _ := c.ctr("task", "ls")
			if strings.Contains(out, "STOPPED") {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("not stopped 10 s after the kill:\n%s", out)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(start)
		t.Logf("stopped %v after the kill", took)
		if took > time.Second {
			t.Errorf("the kill took %v, more than 1 s", took)
		}
		c.ctr("task", "rm", "sleep")
		c.ctr("container", "rm", "sleep")
	})

	// containerd deletes each container; its shim goes with it.
	deadline := time.Now().Add(5 * time.Second)
	for len(c.shims()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if p := c.shims(); len(p) > 0 {
		t.Errorf("shims left running: %v", p)
	}
	if m := c.mounts(); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	c.stopEvts()
	evs := c.events.String()
	for _, topic := range []string{"/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"} {
		if !strings.Contains(evs, topic) {
			t.Errorf("no %s event; containerd saw:\n%s", topic, evs)
		}
	}
}
