package ctrshim_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ampoule-run/ampoule/logging"
)

// criPause is the image the test's CRI takes for a pod's sandbox
// container: the shim runs no wasm for it, so any image the node can
// resolve serves, and the test has no registry to pull registry.k8s.io's
// pause from.
const criPause = "example.com/pause:1"

// criConfig is the CRI plugin's part of the test's containerd config: its
// own stream server port, no CNI configuration (the pods use the node's
// network), the sandbox image above, then deploy/kubernetes's fragment as
// a cluster's node would have it.
func criConfig(t testing.TB, dir string) string {
	frag, err := os.ReadFile("../deploy/kubernetes/containerd-config.toml")
	if err != nil {
		t.Fatal(err)
	}
	// The settings file the fragment names is deploy/kubernetes's, as a
	// node would have it installed.
	settings, err := filepath.Abs("../deploy/kubernetes/ampoule-shim.toml")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(frag), "\n") {
		if !strings.HasPrefix(l, "version") {
			kept = append(kept, strings.ReplaceAll(l, shippedSettings, settings))
		}
	}
	for _, d := range []string{"cni/bin", "cni/conf"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	return fmt.Sprintf(`[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
`, criPause, filepath.Join(dir, "cni/bin"), filepath.Join(dir, "cni/conf")) + strings.Join(kept, "\n")
}

// shippedSettings is where deploy/kubernetes's fragment has the runtime's
// ConfigPath find the shim's settings.
const shippedSettings = "/etc/ampoule/shim.toml"

// criClient is a CRI client of the cluster's containerd, as the kubelet
// is one.
type criClient struct {
	cri.RuntimeServiceClient
	cri.ImageServiceClient
	c    *cluster
	logs string
	// handler is the runtime pods run with: ampoule unless set.
	handler string
}

func startCRI(t testing.TB, env ...string) *criClient { return startCRIWith(t, "", env...) }

// startCRIWith is startCRI whose containerd's config has extra added.
func startCRIWith(t testing.TB, extra string, env ...string) *criClient {
	c := startClusterWith(t, true, extra, env...)
	c.ns = "k8s.io"
	conn, err := grpc.Dial("unix://"+c.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	k := &criClient{RuntimeServiceClient: cri.NewRuntimeServiceClient(conn), ImageServiceClient: cri.NewImageServiceClient(conn),
		c: c, logs: filepath.Join(c.dir, "pods"), handler: "ampoule"}
	c.image(criPause, "../testdata/tiny/module.wasm", "name = \"pause\"\nprofiles = [\"debug\"]\n")
	return k
}

func ctxT() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}

// image waits until CRI knows ref: CRI fills its image store from
// containerd's image events.
func (k *criClient) imageKnown(t testing.TB, ref string) {
	t.Helper()
	for i := 0; ; i++ {
		ctx, cancel := ctxT()
		st, err := k.ImageStatus(ctx, &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: ref}})
		cancel()
		if err == nil && st.Image != nil {
			return
		}
		if i > 50 {
			t.Fatalf("CRI does not know the image %s (%v): containerd's CRI resolves images by the node's platform", ref, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pod runs a pod sandbox with the client's runtime handler on the node's
// network, with the shim's annotations.
func (k *criClient) pod(t testing.TB, name string, annotations map[string]string) (string, *cri.PodSandboxConfig) {
	t.Helper()
	cfg := podConfig(k, name, annotations)
	r, err := k.runPod(cfg)
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	return r.PodSandboxId, cfg
}

func podConfig(k *criClient, name string, annotations map[string]string) *cri.PodSandboxConfig {
	return &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: name, Uid: name + "-uid", Namespace: "default"},
		LogDirectory: filepath.Join(k.logs, name),
		Annotations:  annotations,
		Linux: &cri.LinuxPodSandboxConfig{SecurityContext: &cri.LinuxSandboxSecurityContext{
			NamespaceOptions: &cri.NamespaceOption{Network: cri.NamespaceMode_NODE}}},
	}
}

// runPod is RunPodSandbox with the client's runtime handler.
func (k *criClient) runPod(cfg *cri.PodSandboxConfig) (*cri.RunPodSandboxResponse, error) {
	ctx, cancel := ctxT()
	defer cancel()
	return k.RunPodSandbox(ctx, &cri.RunPodSandboxRequest{Config: cfg, RuntimeHandler: k.handler})
}

// container creates and starts a container of image ref in the pod.
func (k *criClient) container(t testing.TB, pod string, pcfg *cri.PodSandboxConfig, name, ref string) string {
	t.Helper()
	ctx, cancel := ctxT()
	defer cancel()
	cr, err := k.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: pcfg,
		Config: &cri.ContainerConfig{Metadata: &cri.ContainerMetadata{Name: name}, Image: &cri.ImageSpec{Image: ref}, LogPath: name + ".log"}})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	if _, err := k.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
		t.Fatalf("StartContainer %s: %v", name, err)
	}
	return cr.ContainerId
}

// exited waits for the container to exit and returns its status.
// stopTimed stops container id at once (no grace) and waits for its exit:
// how long that took from StopContainer, and its status.
func (k *criClient) stopTimed(t testing.TB, id string) (time.Duration, *cri.ContainerStatus) {
	t.Helper()
	ctx, cancel := ctxT()
	defer cancel()
	start := time.Now()
	if _, err := k.StopContainer(ctx, &cri.StopContainerRequest{ContainerId: id, Timeout: 0}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	st := k.exited(t, id, 10*time.Second)
	return time.Since(start), st
}

func (k *criClient) exited(t testing.TB, id string, within time.Duration) *cri.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := ctxT()
		st, err := k.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: id})
		cancel()
		if err != nil {
			t.Fatalf("ContainerStatus: %v", err)
		}
		if st.Status.State == cri.ContainerState_CONTAINER_EXITED {
			return st.Status
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s is %s after %v", id, st.Status.State, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopPod stops and removes a pod and its containers.
func (k *criClient) stopPod(t testing.TB, pod string) {
	t.Helper()
	ctx, cancel := ctxT()
	defer cancel()
	if _, err := k.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	if _, err := k.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatalf("RemovePodSandbox: %v", err)
	}
}

// A CRI client, as the kubelet is one, runs pods with the runtime handler
// "ampoule" on Debian's containerd 1.6: the hello greeting in the CRI log
// file, exit codes as the containers' exit codes, a guest asleep in
// poll_oneoff stopped within 1 s, and nothing left after the pods go.
func TestCRI(t *testing.T) {
	k := startCRI(t)
	c := k.c
	c.image("example.com/hello:1", "../wasm-examples/hello/module.wasm", helloManifest)
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c.image("example.com/hello-logged:1", "../wasm-examples/hello/module.wasm",
		"log_recipient = \""+id.Recipient().String()+"\"\n"+helloManifest)
	c.image("example.com/exit3:1", "../wasm-examples/crash/module.wasm",
		"name = \"crash\"\nargs = [\"exit\", \"3\"]\nprofiles = [\"debug\", \"staging\"]\n")
	c.image("example.com/sleep:1", "../wasm-examples/hostile/sleep-forever.wasm",
		"name = \"sleep\"\nprofiles = [\"debug\"]\n[limits]\nwall_time = \"200s\"\n")
	for _, ref := range []string{criPause, "example.com/hello:1", "example.com/hello-logged:1", "example.com/exit3:1", "example.com/sleep:1"} {
		k.imageKnown(t, ref)
	}
	debug := map[string]string{"run.ampoule.profile": "debug", "run.ampoule.backend": "sim"}
	pod, pcfg := k.pod(t, "wasm", debug)

	hello := k.container(t, pod, pcfg, "hello", "example.com/hello:1")
	if st := k.exited(t, hello, 30*time.Second); st.ExitCode != 0 {
		t.Errorf("hello exited %d (%s: %s)", st.ExitCode, st.Reason, st.Message)
	}
	log, err := os.ReadFile(filepath.Join(k.logs, "wasm", "hello.log"))
	if err != nil {
		t.Fatal(err)
	}
	// CRI's log format: time, stream, tag, line.
	if !strings.Contains(string(log), " stdout F Hello, tenant, from inside wazero!") {
		t.Errorf("the CRI log lacks the greeting on stdout:\n%s", log)
	}
	if !strings.Contains(string(log), " stderr F ") || !strings.Contains(string(log), "insecure") {
		t.Errorf("the CRI log lacks the simulator's warning on stderr:\n%s", log)
	}

	// Under staging, the CRI log file holds the encrypted log, which
	// the tenant decrypts from the file as the node has it; the host's
	// side of it, stderr, has the static line only.
	spod, spcfg := k.pod(t, "staging", map[string]string{"run.ampoule.profile": "staging", "run.ampoule.backend": "sim"})
	logged := k.container(t, spod, spcfg, "logged", "example.com/hello-logged:1")
	if st := k.exited(t, logged, 30*time.Second); st.ExitCode != 0 {
		t.Errorf("the staging container exited %d (%s: %s)", st.ExitCode, st.Reason, st.Message)
	}
	clog, err := os.ReadFile(filepath.Join(k.logs, "staging", "logged.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(clog), " stdout F "+logging.TextMagic+"\n") || strings.Contains(string(clog), "Hello") {
		t.Errorf("the staging CRI log is not the log's text form, or holds the greeting in the clear:\n%.500s", clog)
	}
	if plain, err := decryptAll(clog, id); err != nil || !strings.Contains(plain, "Hello, tenant, from inside wazero!") {
		t.Errorf("the staging CRI log file does not decrypt to the greeting: %v (%q)\n%.500s", err, plain, clog)
	}
	k.stopPod(t, spod)

	exit3 := k.container(t, pod, pcfg, "exit3", "example.com/exit3:1")
	if st := k.exited(t, exit3, 30*time.Second); st.ExitCode != 3 {
		t.Errorf("exit3 exited %d, want 3 (%s: %s)", st.ExitCode, st.Reason, st.Message)
	}

	sleep := k.container(t, pod, pcfg, "sleep", "example.com/sleep:1")
	time.Sleep(300 * time.Millisecond) // into poll_oneoff's day-long sleep
	took, st := k.stopTimed(t, sleep)
	t.Logf("the sleeping guest stopped %v after StopContainer, exit %d", took, st.ExitCode)
	if took > time.Second {
		t.Errorf("stopping the sleeping guest took %v, more than 1 s", took)
	}
	if st.ExitCode != 128+9 {
		t.Errorf("the killed guest exited %d, want 137", st.ExitCode)
	}

	k.stopPod(t, pod)
	k.noneLeft(t)
}

// noneLeft fails the test if a shim, a mount beneath the test's directory
// or a shim socket outlives the pods.
func (k *criClient) noneLeft(t testing.TB) {
	t.Helper()
	c := k.c
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
}

// decryptAll reads a log in any of its forms (here a CRI log file) with
// the tenant's identity and returns its records' messages.
func decryptAll(log []byte, id *logging.Identity) (string, error) {
	r, err := logging.NewReader(bytes.NewReader(log), id)
	if err != nil {
		return "", err
	}
	var plain string
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return plain, nil
		}
		if err != nil {
			return plain, err
		}
		plain += string(rec.Message)
	}
}
