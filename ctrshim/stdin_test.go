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
