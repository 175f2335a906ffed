package ctrshim_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ampoule-run/ampoule/ctrshim"
)

// buildShim builds the shim binary from this tree into dir.
func buildShim(t testing.TB, dir string) string {
	t.Helper()
	shim := filepath.Join(dir, "containerd-shim-ampoule-v1")
	if out, err := exec.Command("go", "build", "-o", shim, "../cmd/containerd-shim-ampoule-v1").CombinedOutput(); err != nil {
		t.Fatalf("building the shim: %v\n%s", err, out)
	}
	return shim
}

// shimNode runs the shim binary as containerd does, without containerd:
// its start in a bundle directory, its task API over ttrpc at the address
// start prints.
type shimNode struct {
	t             testing.TB
	shim, address string
	bundle        string
	env           []string
}

// start runs 'containerd-shim-ampoule-v1 start' for container id and
// returns the address it printed.
func (n *shimNode) start(id string) (string, error) {
	cmd := exec.Command(n.shim, "-namespace", "race", "-address", n.address, "-id", id, "start")
	cmd.Dir, cmd.Env = n.bundle, n.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("start %s: %v: %s", id, err, errb.String())
	}
	return out.String(), nil
}

// dial is containerd's connection to the shim at address, for one task.
func (n *shimNode) dial(address string) taskapi.TaskService {
	n.t.Helper()
	conn, err := net.Dial("unix", strings.TrimPrefix(address, "unix://"))
	if err != nil {
		n.t.Fatalf("dialing the shim at %s: %v", address, err)
	}
	c := ttrpc.NewClient(conn)
	n.t.Cleanup(func() { c.Close() })
	return taskapi.NewTaskClient(c)
}

// shimGone reports whether process pid has exited (gone, or a zombie its
// new parent has not reaped).
func shimGone(pid uint32) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || len(b) < i+3 || b[i+2] == 'Z'
}

// The race of containerd's start of a new task with a shim that is
// ending, with the shim's real processes (containerd's part played by the
// test, which keeps the order exact): a shim's last task is deleted; the
// start of the next task finds that shim; at that very moment the shim is
// told to end (containerd's Shutdown, no linger); then the new task's
// Create comes over the address start printed. Before starts and ending
// shims agreed under a lock, every such Create failed (Unavailable, or no
// one listening). Then the same with the Shutdown and the start at once,
// in either order. Looped; every Create must succeed, and every shim end
// once it holds nothing.
func TestStartMeetsEndingShim(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skipf("skipped: the shims' sockets are in %s, which only root may make (CI runs as root)", ctrshim.SocketDir)
	}
	dir := t.TempDir()
	n := &shimNode{t: t, shim: buildShim(t, dir), bundle: filepath.Join(dir, "bundle"),
		// No containerd listens there: it names the shims' socket only.
		address: filepath.Join(dir, "containerd.sock")}
	os.Mkdir(n.bundle, 0o755)
	if err := os.WriteFile(filepath.Join(n.bundle, "config.json"), []byte(`{"annotations":{"io.kubernetes.cri.container-type":"sandbox"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "TTRPC_ADDRESS=") && !strings.HasPrefix(e, "AMPOULE_SHIM_") {
			n.env = append(n.env, e)
		}
	}
	// A shim with no task ends at once (containerd's Shutdown after the
	// delete of its last task).
	shimLog := filepath.Join(dir, "shim.log")
	n.env = append(n.env, ctrshim.EnvLinger+"=0s", ctrshim.EnvLog+"="+shimLog)
	t.Cleanup(func() { checkShimLog(t, shimLog) })
	ctx := context.Background()
	pids := map[uint32]bool{}
	create := func(address, id string) taskapi.TaskService {
		t.Helper()
		tc := n.dial(address)
		if _, err := tc.Create(ctx, &taskapi.CreateTaskRequest{ID: id, Bundle: n.bundle}); err != nil {
			t.Fatalf("Create %s at %s (%s): %v", id, address, status.Code(err), err)
		}
		c, err := tc.Connect(ctx, &taskapi.ConnectRequest{ID: id})
		if err != nil {
			t.Fatal(err)
		}
		pids[c.ShimPid] = true
		return tc
	}
	del := func(tc taskapi.TaskService, id string) {
		t.Helper()
		if _, err := tc.Delete(ctx, &taskapi.DeleteRequest{ID: id}); err != nil {
			t.Fatalf("Delete %s: %v", id, err)
		}
	}
	const loops = 40
	for i := range loops {
		a, err := n.start(fmt.Sprint("a", i))
		if err != nil {
			t.Fatal(err)
		}
		ta := create(a, fmt.Sprint("a", i))
		del(ta, fmt.Sprint("a", i))

		// The start finds the shim, which then ends; the Create comes.
		b, err := n.start(fmt.Sprint("b", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ta.Shutdown(ctx, &taskapi.ShutdownRequest{ID: fmt.Sprint("a", i)}); err != nil && status.Code(err) != codes.Unavailable {
			t.Fatalf("Shutdown: %v", err)
		}
		tb := create(b, fmt.Sprint("b", i))
		del(tb, fmt.Sprint("b", i))

		// The shim told to end and a start at once.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tb.Shutdown(ctx, &taskapi.ShutdownRequest{ID: fmt.Sprint("b", i)})
		}()
		c, err := n.start(fmt.Sprint("c", i))
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		tc := create(c, fmt.Sprint("c", i))
		del(tc, fmt.Sprint("c", i))
		tc.Shutdown(ctx, &taskapi.ShutdownRequest{ID: fmt.Sprint("c", i)})
	}
	// Every shim holding nothing has ended.
	deadline := time.Now().Add(10 * time.Second)
	for pid := range pids {
		for !shimGone(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !shimGone(pid) {
			t.Errorf("shim %d still runs with no task", pid)
		}
	}
	t.Logf("%d loops, %d shim processes", loops, len(pids))
}
