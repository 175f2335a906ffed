package ctrshim_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/ctrshim"
)

// criRuntime is CRI's config of one more ampoule runtime, name, whose
// options table holds table (TOML lines).
func criRuntime(name, table string) string {
	return fmt.Sprintf(`
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s]
  runtime_type = "io.containerd.ampoule.v1"
  pod_annotations = ["run.ampoule.*"]
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%[1]s.options]
%[2]s
`, name, table)
}

// criRuntimeFile is criRuntime whose options name, by ConfigPath, a file
// in dir holding settings.
func criRuntimeFile(t testing.TB, dir, name, settings string) string {
	file := filepath.Join(dir, name+".toml")
	if err := os.WriteFile(file, []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	return criRuntime(name, fmt.Sprintf("  ConfigPath = %q", file))
}

// The shim's settings from containerd's config, through CRI as the
// kubelet drives it, on the real containerd: the runtime's options over
// containerd's environment (which lingers 10 s here), key by key, and a
// key that could choose what runs refused with E1080 before anything
// starts. The runtimes: ampoule as deploy/kubernetes ships it (its
// settings file sets nothing), ampoule-quick (Linger 0s), ampoule-cold
// (Warm false), ampoule-profile (a Profile key) and ampoule-table (the
// settings in the table itself, which containerd 1.6 does not pass on).
func TestCRIRuntimeOptions(t *testing.T) {
	dir := t.TempDir()
	extra := criRuntimeFile(t, dir, "ampoule-quick", "Linger = \"0s\"\n") +
		criRuntimeFile(t, dir, "ampoule-cold", "Warm = false\n") +
		criRuntimeFile(t, dir, "ampoule-profile", "Profile = \"debug\"\n") +
		criRuntime("ampoule-table", "  Linger = \"0s\"")
	k := startCRIWith(t, extra, ctrshim.EnvLinger+"=10s")
	c := k.c
	c.image("example.com/tiny:1", "../testdata/tiny/module.wasm", "name = \"tiny\"\nprofiles = [\"debug\"]\n")
	k.imageKnown(t, criPause)
	k.imageKnown(t, "example.com/tiny:1")

	// Linger 0s over the environment's 10 s: the shim ends with its pod.
	k.handler = "ampoule-quick"
	k.podCycle(t, "quick", "example.com/tiny:1", debugSim)
	if h := k.waitHeld(t, 0, 0); len(h.servers)+len(h.runners) > 0 {
		t.Errorf("Linger = \"0s\": shims %v and runners %v left after the pod", h.servers, h.runners)
	}

	// Warm false: a shim for each pod, none kept after.
	k.handler = "ampoule-cold"
	p1, _ := k.pod(t, "cold1", debugSim)
	p2, _ := k.pod(t, "cold2", debugSim)
	if s := c.servers(); len(s) != 2 {
		t.Errorf("Warm = false: two pods are served by shims %v, want one each", s)
	}
	k.stopPod(t, p1)
	k.stopPod(t, p2)
	k.podCycle(t, "cold3", "example.com/tiny:1", debugSim)
	if h := k.waitHeld(t, 0, 0); len(h.servers)+len(h.runners) > 0 {
		t.Errorf("Warm = false: shims %v and runners %v left after the pods", h.servers, h.runners)
	}

	// A key that would choose what runs: the pod does not start.
	k.handler = "ampoule-profile"
	_, err := k.runPod(podConfig(k, "profile", debugSim))
	if err == nil || !strings.Contains(err.Error(), "E1080 shim-options-invalid") || !strings.Contains(err.Error(), "unknown key Profile") {
		t.Errorf("a Profile key in the runtime's settings: RunPodSandbox gave %v, want E1080", err)
	}
	t.Logf("a Profile key: %v", err)

	// The settings in the options table: containerd 1.6 hands the shim
	// none of them, and the shim says so rather than ignore them; later
	// containerds hand them on.
	k.handler = "ampoule-table"
	v, _ := exec.Command("containerd", "--version").Output()
	_, err = k.runPod(podConfig(k, "table", debugSim))
	t.Logf("settings in the options table (%s): %v", strings.TrimSpace(string(v)), err)
	if strings.Contains(string(v), " 1.6.") {
		if err == nil || !strings.Contains(err.Error(), "E1080 shim-options-invalid") || !strings.Contains(err.Error(), "ConfigPath") {
			t.Errorf("settings in containerd 1.6's options table: RunPodSandbox gave %v, want E1080 naming ConfigPath", err)
		}
	} else if err != nil {
		t.Errorf("settings in the options table: %v", err)
	}

	// The runtime as shipped sets nothing: the environment's 10 s hold
	// its shim and runners after the pod.
	k.handler = "ampoule"
	k.podCycle(t, "shipped", "example.com/tiny:1", debugSim)
	time.Sleep(2 * time.Second)
	if h := k.held(t); len(h.servers) != 1 || len(h.runners) == 0 {
		t.Errorf("2 s after the pod, the environment's linger of 10 s: shims %v and runners %v, want the shim lingering with runners", h.servers, h.runners)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(c.shims()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if s := c.shims(); len(s) > 0 {
		t.Errorf("shims left 20 s after the last pod: %v", s)
	}
}
