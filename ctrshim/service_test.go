package ctrshim

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// client is a task client over real ttrpc on a unix socket, to a Service
// that publishes nothing.
func client(t *testing.T) (taskapi.TaskService, chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ttrpc.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	shut := make(chan struct{}, 1)
	taskapi.RegisterTaskService(srv, NewService("test", nil, func() { shut <- struct{}{} }))
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() { srv.Close() })
	conn, err := net.Dial("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	c := ttrpc.NewClient(conn)
	t.Cleanup(func() { c.Close() })
	return taskapi.NewTaskClient(c), shut
}

func bundle(t *testing.T, annotations string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"root":{"path":"rootfs"},"annotations":{`+annotations+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A pod's sandbox container runs no wasm: it starts, stays running, stops
// at a kill with 128 + the signal, and is deleted; then the shim may go.
func TestSandboxContainer(t *testing.T) {
	tc, shut := client(t)
	ctx := context.Background()
	b := bundle(t, `"io.kubernetes.cri.container-type":"sandbox"`)
	if _, err := tc.Create(ctx, &taskapi.CreateTaskRequest{ID: "pod", Bundle: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Create(ctx, &taskapi.CreateTaskRequest{ID: "pod", Bundle: b}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second create: %v", err)
	}
	st, err := tc.Start(ctx, &taskapi.StartRequest{ID: "pod"})
	if err != nil || st.Pid != uint32(os.Getpid()) {
		t.Fatalf("start: %v, pid %d", err, st.GetPid())
	}
	if s, _ := tc.State(ctx, &taskapi.StateRequest{ID: "pod"}); s.Status != task.Status_RUNNING {
		t.Fatalf("state %v", s.Status)
	}
	if _, err := tc.Delete(ctx, &taskapi.DeleteRequest{ID: "pod"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("delete while running: %v", err)
	}
	if _, err := tc.Shutdown(ctx, &taskapi.ShutdownRequest{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-shut:
		t.Fatal("the shim shut down with a task left")
	default:
	}
	if _, err := tc.Kill(ctx, &taskapi.KillRequest{ID: "pod", Signal: 15}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	w, err := tc.Wait(wctx, &taskapi.WaitRequest{ID: "pod"})
	if err != nil || w.ExitStatus != 128+15 {
		t.Fatalf("wait: %v, status %d", err, w.GetExitStatus())
	}
	d, err := tc.Delete(ctx, &taskapi.DeleteRequest{ID: "pod"})
	if err != nil || d.ExitStatus != 143 {
		t.Fatalf("delete: %v %v", err, d)
	}
	if _, err := tc.State(ctx, &taskapi.StateRequest{ID: "pod"}); status.Code(err) != codes.NotFound {
		t.Fatalf("state after delete: %v", err)
	}
	if _, err := tc.Shutdown(ctx, &taskapi.ShutdownRequest{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-shut:
	case <-time.After(5 * time.Second):
		t.Fatal("no shutdown once the last task went")
	}
}

// The calls a wasm workload cannot serve say so, by name; an unknown task
// or an exec is not found; a terminal is refused.
func TestRefusals(t *testing.T) {
	tc, _ := client(t)
	ctx := context.Background()
	calls := map[string]func() error{
		"Pause":      func() error { _, err := tc.Pause(ctx, &taskapi.PauseRequest{ID: "x"}); return err },
		"Resume":     func() error { _, err := tc.Resume(ctx, &taskapi.ResumeRequest{ID: "x"}); return err },
		"Checkpoint": func() error { _, err := tc.Checkpoint(ctx, &taskapi.CheckpointTaskRequest{ID: "x"}); return err },
		"Exec":       func() error { _, err := tc.Exec(ctx, &taskapi.ExecProcessRequest{ID: "x"}); return err },
		"ResizePty":  func() error { _, err := tc.ResizePty(ctx, &taskapi.ResizePtyRequest{ID: "x"}); return err },
		"Update":     func() error { _, err := tc.Update(ctx, &taskapi.UpdateTaskRequest{ID: "x"}); return err },
		"Stats":      func() error { _, err := tc.Stats(ctx, &taskapi.StatsRequest{ID: "x"}); return err },
	}
	for name, call := range calls {
		err := call()
		if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), name+" is not implemented") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := tc.Start(ctx, &taskapi.StartRequest{ID: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("start of no task: %v", err)
	}
	if _, err := tc.Kill(ctx, &taskapi.KillRequest{ID: "nope", ExecID: "e"}); status.Code(err) != codes.NotFound {
		t.Errorf("kill of an exec: %v", err)
	}
	if _, err := tc.Create(ctx, &taskapi.CreateTaskRequest{ID: "t", Bundle: bundle(t, ""), Terminal: true}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("terminal: %v", err)
	}
	if _, err := tc.Create(ctx, &taskapi.CreateTaskRequest{ID: "t", Bundle: t.TempDir()}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no config.json: %v", err)
	}
}

// A warm shim holding no task stays its linger, a Create in that time
// keeps it (and the next Shutdown starts the linger again), and once the
// linger is over with no task it ends and refuses a Create that comes
// after (Unavailable: containerd starts a new shim).
func TestLinger(t *testing.T) {
	shut := make(chan struct{}, 4)
	s := NewWarmService("test", nil, func() { shut <- struct{}{} }, nil, 300*time.Millisecond)
	ctx := context.Background()
	ended := func(within time.Duration) bool {
		select {
		case <-shut:
			return true
		case <-time.After(within):
			return false
		}
	}
	if _, err := s.Shutdown(ctx, &taskapi.ShutdownRequest{}); err != nil {
		t.Fatal(err)
	}
	// A sandbox task within the linger.
	time.Sleep(100 * time.Millisecond)
	b := bundle(t, `"io.kubernetes.cri.container-type":"sandbox"`)
	if _, err := s.Create(ctx, &taskapi.CreateTaskRequest{ID: "pod", Bundle: b}); err != nil {
		t.Fatal(err)
	}
	if ended(500 * time.Millisecond) {
		t.Fatal("the shim ended while it held a task")
	}
	if _, err := s.Delete(ctx, &taskapi.DeleteRequest{ID: "pod"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.Shutdown(ctx, &taskapi.ShutdownRequest{}); err != nil {
		t.Fatal(err)
	}
	if !ended(5 * time.Second) {
		t.Fatal("the shim did not end after its linger")
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("the shim ended %v after its last task, before its linger of 300ms", took)
	}
	_, err := s.Create(ctx, &taskapi.CreateTaskRequest{ID: "late", Bundle: b})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("a Create after the end: %v, want Unavailable", err)
	}
}

// A reservation (a start's promise of a Create) holds a shim with no task
// through containerd's Shutdown; its Create takes over; one whose Create
// never comes expires, and the shim lingers and ends; an ending shim
// refuses a reservation, so that the start starts a new one.
func TestReservation(t *testing.T) {
	shut := make(chan struct{}, 4)
	s := NewWarmService("test", nil, func() { shut <- struct{}{} }, nil, 0)
	s.reservationTTL = 200 * time.Millisecond
	ctx := context.Background()
	ended := func(within time.Duration) bool {
		select {
		case <-shut:
			return true
		case <-time.After(within):
			return false
		}
	}
	b := bundle(t, `"io.kubernetes.cri.container-type":"sandbox"`)
	if err := s.Reserve("a"); err != nil {
		t.Fatal(err)
	}
	s.Shutdown(ctx, &taskapi.ShutdownRequest{})
	if ended(100 * time.Millisecond) {
		t.Fatal("the shim ended holding a reservation")
	}
	if _, err := s.Create(ctx, &taskapi.CreateTaskRequest{ID: "a", Bundle: b}); err != nil {
		t.Fatal(err)
	}
	// The task, not the reservation, holds the shim now: past the
	// reservation's expiry it is still there.
	if ended(400 * time.Millisecond) {
		t.Fatal("the shim ended holding a task")
	}
	if _, err := s.Delete(ctx, &taskapi.DeleteRequest{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	// A reservation whose Create never comes.
	if err := s.Reserve("b"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.Shutdown(ctx, &taskapi.ShutdownRequest{})
	if !ended(5 * time.Second) {
		t.Fatal("the shim did not end once the reservation expired")
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("the shim ended %v after the reservation, before its expiry", took)
	}
	if err := s.Reserve("c"); status.Code(err) != codes.Unavailable {
		t.Errorf("a reservation with an ended shim: %v, want Unavailable", err)
	}
}
