package ctrshim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
)

// A workload reading stdin before containerd (or CRI, or ctr) has opened
// the stdin FIFO's writing end waits for the writer and reads what it
// writes, then end of file once it closes; it does not read end of file
// at once. The guest here copies stdin to stdout and counts the bytes.
func TestStdinBeforeTheWriter(t *testing.T) {
	module, err := os.ReadFile("../wasm-examples/crash/module.wasm")
	if err != nil {
		t.Fatalf("%v: run 'make examples' first", err)
	}
	tc, _ := client(t)
	ctx := context.Background()
	dir := t.TempDir()
	b := bundle(t, `"run.ampoule.profile":"debug","run.ampoule.backend":"sim","run.ampoule.sim-key":"`+filepath.Join(dir, "sim.key")+`"`)
	root := filepath.Join(b, "rootfs")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "module.wasm"), module, 0o644)
	os.WriteFile(filepath.Join(root, "ampoule.toml"), []byte("name = \"echo\"\nargs = [\"echo\"]\nprofiles = [\"debug\"]\n"), 0o644)
	stdin, stdout := filepath.Join(dir, "stdin"), filepath.Join(dir, "stdout")
	if err := syscall.Mkfifo(stdin, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stdout, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Create(ctx, &taskapi.CreateTaskRequest{ID: "echo", Bundle: b, Stdin: stdin, Stdout: stdout}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Start(ctx, &taskapi.StartRequest{ID: "echo"}); err != nil {
		t.Fatal(err)
	}
	// The guest is reading by now (its run compiles from a warm cache in
	// well under this, idle); the writer comes late.
	time.Sleep(3 * time.Second)
	// Without waiting: no reader left (ENXIO) means the run has taken end
	// of file and gone.
	w, err := os.OpenFile(stdin, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		out, _ := os.ReadFile(stdout)
		t.Fatalf("opening stdin's writing end: %v: no one reads it any more (stdout %q)", err, out)
	}
	w.WriteString("written late\n")
	w.Close()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	res, err := tc.Wait(wctx, &taskapi.WaitRequest{ID: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(stdout)
	if res.ExitStatus != 0 || !strings.Contains(string(out), "written late\n") || !strings.Contains(string(out), "13") {
		t.Errorf("exit %d, stdout %q: the guest did not read what the late writer wrote", res.ExitStatus, out)
	}
	if _, err := tc.Delete(ctx, &taskapi.DeleteRequest{ID: "echo"}); err != nil {
		t.Fatal(err)
	}
}

// CloseIO ends a running workload's stdin while containerd's writer is
// still open: the guest reads what was written, then end of file. Pids
// lists the task's process while it runs, Connect the shim's and the
// task's pids.
func TestCloseIOPidsConnect(t *testing.T) {
	module, err := os.ReadFile("../wasm-examples/crash/module.wasm")
	if err != nil {
		t.Fatalf("%v: run 'make examples' first", err)
	}
	tc, _ := client(t)
	ctx := context.Background()
	dir := t.TempDir()
	b := bundle(t, `"run.ampoule.profile":"debug","run.ampoule.backend":"sim","run.ampoule.sim-key":"`+filepath.Join(dir, "sim.key")+`"`)
	root := filepath.Join(b, "rootfs")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "module.wasm"), module, 0o644)
	os.WriteFile(filepath.Join(root, "ampoule.toml"), []byte("name = \"echo\"\nargs = [\"echo\"]\nprofiles = [\"debug\"]\n"), 0o644)
	stdin, stdout := filepath.Join(dir, "stdin"), filepath.Join(dir, "stdout")
	if err := syscall.Mkfifo(stdin, 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(stdout, nil, 0o600)
	if _, err := tc.Create(ctx, &taskapi.CreateTaskRequest{ID: "echo", Bundle: b, Stdin: stdin, Stdout: stdout}); err != nil {
		t.Fatal(err)
	}
	if p, err := tc.Pids(ctx, &taskapi.PidsRequest{ID: "echo"}); err != nil || len(p.Processes) != 0 {
		t.Errorf("Pids before Start: %v, %v", p, err)
	}
	st, err := tc.Start(ctx, &taskapi.StartRequest{ID: "echo"})
	if err != nil {
		t.Fatal(err)
	}
	// containerd's writer, open for the whole test.
	w, err := os.OpenFile(stdin, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteString("abc")
	deadline := time.Now().Add(60 * time.Second)
	for out, _ := os.ReadFile(stdout); !strings.Contains(string(out), "abc"); out, _ = os.ReadFile(stdout) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest did not echo what was written: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p, err := tc.Pids(ctx, &taskapi.PidsRequest{ID: "echo"})
	if err != nil || len(p.Processes) != 1 || p.Processes[0].Pid != st.Pid || st.Pid == uint32(os.Getpid()) {
		t.Errorf("Pids while running: %v, %v; want the runner %d", p, err, st.Pid)
	}
	cn, err := tc.Connect(ctx, &taskapi.ConnectRequest{ID: "echo"})
	if err != nil || cn.ShimPid != uint32(os.Getpid()) || cn.TaskPid != st.Pid {
		t.Errorf("Connect: %v, %v", cn, err)
	}
	if _, err := tc.CloseIO(ctx, &taskapi.CloseIORequest{ID: "echo", Stdin: true}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := tc.Wait(wctx, &taskapi.WaitRequest{ID: "echo"})
	if err != nil {
		t.Fatalf("the guest did not end after CloseIO: %v", err)
	}
	out, _ := os.ReadFile(stdout)
	if res.ExitStatus != 0 || !strings.Contains(string(out), "echo: 3 bytes") {
		t.Errorf("exit %d, stdout %q: want the 3 bytes, then end of file", res.ExitStatus, out)
	}
	tc.Delete(ctx, &taskapi.DeleteRequest{ID: "echo"})
}
