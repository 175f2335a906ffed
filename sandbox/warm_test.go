package sandbox

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
)

// A warm runner compiles before its run, then runs it with the streams
// the run gives, once.
func TestWarmRunsOnce(t *testing.T) {
	s, _, _ := spec(t, "hello", "Ada")
	w, err := Prepare(testExe(t), s)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the warm runner never compiled")
	}
	if !w.Alive() {
		t.Fatal("a compiled, idle runner is not alive")
	}
	var out bytes.Buffer
	started := 0
	res, err := w.Run(context.Background(), nil, &out, nil, Hooks{BeforeStart: func(pid int) error { started = pid; return nil }})
	if err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), "Hello, Ada, from inside wazero!") {
		t.Fatalf("%+v %v %q", res, err, out.String())
	}
	if started != w.PID() {
		t.Errorf("BeforeStart got pid %d, want %d", started, w.PID())
	}
	if w.Alive() {
		t.Error("a used runner is alive")
	}
	if _, err := w.Run(context.Background(), nil, nil, nil, Hooks{}); codeOf(err) != errcode.Internal {
		t.Errorf("a second run: %v", err)
	}
}

// A warm runner that dies while idle fails its run with E5001, and is no
// longer alive; one killed mid-run fails that run only.
func TestWarmKilled(t *testing.T) {
	s, _, _ := spec(t, "hello")
	w, err := Prepare(testExe(t), s)
	if err != nil {
		t.Fatal(err)
	}
	<-w.Ready()
	syscall.Kill(w.PID(), syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for w.Alive() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if w.Alive() {
		t.Fatal("a killed runner is alive")
	}
	if _, err := w.Run(context.Background(), nil, nil, nil, Hooks{}); codeOf(err) != errcode.Internal {
		t.Errorf("run of a dead runner: %v", err)
	}

	s, _, _ = spec(t, "crash", "spin")
	w, err = Prepare(testExe(t), s)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := spec(t, "hello")
	w2, err := Prepare(testExe(t), other)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		syscall.Kill(w.PID(), syscall.SIGKILL)
	}()
	if _, err := w.Run(context.Background(), nil, nil, nil, Hooks{}); codeOf(err) != errcode.Internal {
		t.Errorf("run killed mid-run: %v", err)
	}
	var out bytes.Buffer
	if res, err := w2.Run(context.Background(), nil, &out, nil, Hooks{}); err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), "Hello") {
		t.Errorf("the other run: %+v %v %q", res, err, out.String())
	}
}

// A warm runner gets the run's stdin; a killed idle one is reaped.
func TestWarmStdinAndKill(t *testing.T) {
	s, _, _ := spec(t, "crash", "stdin")
	w, err := Prepare(testExe(t), s)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := w.Run(context.Background(), strings.NewReader("from stdin"), &out, nil, Hooks{}); err != nil || !strings.Contains(out.String(), "stdin returned 1 <nil>") {
		t.Errorf("%v %q", err, out.String())
	}
	w, err = Prepare(testExe(t), s)
	if err != nil {
		t.Fatal(err)
	}
	w.Kill()
	w.Kill()
	if w.Alive() {
		t.Error("a killed runner is alive")
	}
	s.Dirs = []Mount{{Host: t.TempDir(), Guest: "/d"}}
	if _, err := Prepare(testExe(t), s); err == nil {
		t.Error("a warm runner took a mount")
	}
}

// A warm runner that idled past its compile bound still runs: the bound
// is on compiling, which it did in time.
func TestWarmIdlesPastCompileBound(t *testing.T) {
	s, _, _ := spec(t, "hello")
	s.CompileTime = 5 * time.Second
	var ws []*Warm
	for range 3 {
		w, err := Prepare(testExe(t), s)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	for _, w := range ws {
		<-w.Ready()
	}
	// Past the bound, counted from the runners' start.
	time.Sleep(5500 * time.Millisecond)
	for i, w := range ws {
		if res, err := w.Run(context.Background(), nil, nil, nil, Hooks{}); err != nil || res.ExitCode != 0 {
			t.Errorf("runner %d: %+v %v", i, res, err)
		}
	}
}
