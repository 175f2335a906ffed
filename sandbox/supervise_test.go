package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/shim"
)

func testExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestSuperviseRuns(t *testing.T) {
	s, stdout, _ := spec(t, "hello", "Ada")
	s.Env = map[string]string{"GREETING": "Hi"}
	res, err := Supervise(context.Background(), testExe(t), s, Hooks{})
	if err != nil || res.ExitCode != 0 || !strings.Contains(stdout.String(), "Hi, Ada, from inside wazero!") {
		t.Fatalf("%+v %v %q", res, err, stdout)
	}
	s, _, _ = spec(t, "crash", "exit", "42")
	if res, err := Supervise(context.Background(), testExe(t), s, Hooks{}); err != nil || res.ExitCode != 42 {
		t.Errorf("exit 42: %+v %v", res, err)
	}
}

func TestSuperviseCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		tune func(*Spec)
		code errcode.Code
	}{
		{[]string{"trap"}, nil, errcode.WorkloadTrap},
		{[]string{"oom"}, nil, errcode.MemoryLimit},
		{[]string{"flood"}, nil, errcode.OutputLimit},
		{[]string{"spin"}, func(s *Spec) { s.WallTime = 300 * time.Millisecond }, errcode.WallTimeLimit},
		{[]string{"sleep"}, func(s *Spec) { s.WallTime = 300 * time.Millisecond }, errcode.WallTimeLimit},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			s, stdout, stderr := spec(t, "crash", tc.args...)
			if tc.tune != nil {
				tc.tune(&s)
			}
			_, err := Supervise(context.Background(), testExe(t), s, Hooks{})
			if codeOf(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
			if tc.code == errcode.OutputLimit && int64(stdout.Len()+stderr.Len()) != s.OutputBytes {
				t.Errorf("wrote %d bytes, want exactly %d", stdout.Len()+stderr.Len(), s.OutputBytes)
			}
		})
	}
}

// TestSuperviseCancel: a cancelled supervised run ends promptly even when the
// guest spins in pure wasm, which no in-process run can stop without
// wazero's loop checks.
func TestSuperviseCancel(t *testing.T) {
	for _, mode := range []string{"spin", "sleep", "stdin"} {
		t.Run(mode, func(t *testing.T) {
			s, _, _ := spec(t, "crash", mode)
			r, w, _ := os.Pipe() // an idle stdin, passed to the child as a file
			defer r.Close()
			defer w.Close()
			s.Stdin = r
			var stderr testwasm.SyncBuffer
			s.Stderr = &stderr
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { _, err := Supervise(ctx, testExe(t), s, Hooks{}); done <- err }()
			deadline := time.Now().Add(20 * time.Second)
			for !strings.Contains(stderr.String(), "mode "+mode) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			select {
			case err := <-done:
				if codeOf(err) != errcode.Interrupted {
					t.Errorf("got %v, want Interrupted", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the supervised run did not stop after cancel")
			}
		})
	}
}

// TestSuperviseConfined runs workloads of every kind in a runner under each
// seccomp action: confinement must change no outcome.
func TestSuperviseConfined(t *testing.T) {
	if _, err := shim.Allowlist(); err != nil {
		t.Skipf("no seccomp allowlist here: %v", err)
	}
	files := testwasm.Example(t, "files")
	for _, action := range []shim.SeccompAction{shim.SeccompErrno, shim.SeccompKill} {
		t.Run(action.String(), func(t *testing.T) {
			for _, tc := range []struct {
				example string
				args    []string
				rw      bool
				code    errcode.Code
				exit    uint32
				stdout  string
			}{
				{"hello", nil, false, 0, 0, "Hello, world, from inside wazero!"},
				{"files", nil, true, 0, 0, "wrote /out/report.txt"},
				{"crash", []string{"panic"}, false, 0, 2, ""},
				{"crash", []string{"exit", "7"}, false, 0, 7, ""},
				{"crash", []string{"trap"}, false, errcode.WorkloadTrap, 0, ""},
				{"crash", []string{"oom"}, false, errcode.MemoryLimit, 0, ""},
				{"crash", []string{"flood"}, false, errcode.OutputLimit, 0, ""},
				{"crash", []string{"churn", "/out"}, true, 0, 0, "churned"},
				{"crash", []string{"fds", "/out"}, true, errcode.OpenFilesLimit, 0, ""},
			} {
				s, stdout, stderr := spec(t, tc.example, tc.args...)
				s.Seccomp = action
				s.OpenFiles = 64
				if tc.rw {
					s.Dirs = []Mount{{Host: filepath.Join(files, "data"), Guest: "/data"}, {Host: t.TempDir(), Guest: "/out", Writable: true}}
				}
				res, err := Supervise(context.Background(), testExe(t), s, Hooks{})
				if codeOf(err) != tc.code || res.ExitCode != tc.exit || !strings.Contains(stdout.String(), tc.stdout) {
					t.Errorf("%s %v: %+v %v, want code %v exit %d\nstdout %q\nstderr %q", tc.example, tc.args, res, err, tc.code, tc.exit, stdout, stderr)
				}
			}
		})
	}
}

// TestRunnerIsConfined looks at a running runner from outside: its status
// must show a seccomp filter and no_new_privs.
func TestRunnerIsConfined(t *testing.T) {
	if _, err := shim.Allowlist(); err != nil {
		t.Skipf("no seccomp allowlist here: %v", err)
	}
	s, _, _ := spec(t, "crash", "sleep")
	s.Seccomp = shim.SeccompErrno
	var stderr testwasm.SyncBuffer
	s.Stderr = &stderr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := Supervise(ctx, testExe(t), s, Hooks{}); done <- err }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "mode sleep") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	status := ""
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err == nil && strings.Contains(string(b), "\nPPid:\t"+strconv.Itoa(os.Getpid())+"\n") {
			status = string(b)
		}
	}
	if status == "" {
		t.Fatal("no runner found among this process's children")
	}
	for _, want := range []string{"\nSeccomp:\t2\n", "\nNoNewPrivs:\t1\n"} {
		if !strings.Contains(status, want) {
			t.Errorf("runner status lacks %q", strings.TrimSpace(want))
		}
	}
}

// TestSuperviseReadyHook: Ready runs once the runner has compiled, before
// the workload's first instruction, and a cancelled context is honoured
// while waiting for it.
func TestSuperviseReadyHook(t *testing.T) {
	s, _, _ := spec(t, "hello")
	// Ready reads what the runner has written while exec's goroutine may
	// be copying more: the buffer must be safe for both.
	stdout := new(testwasm.SyncBuffer)
	s.Stdout = stdout
	var order []string
	res, err := Supervise(context.Background(), testExe(t), s, Hooks{
		BeforeStart: func(int) error { order = append(order, "before"); return nil },
		Ready:       func() { order = append(order, "ready:"+stdout.String()) },
	})
	if err != nil || res.ExitCode != 0 || strings.Join(order, ",") != "before,ready:" || !strings.Contains(stdout.String(), "Hello") {
		t.Fatalf("%+v %v order %q stdout %q", res, err, order, stdout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, _, _ = spec(t, "hello")
	s.CacheDir = "" // compiling takes long enough to be interrupted
	if _, err := Supervise(ctx, testExe(t), s, Hooks{Ready: func() { t.Error("Ready ran on a cancelled run") }}); codeOf(err) != errcode.Interrupted {
		t.Errorf("cancelled before ready: %v", err)
	}
}

// hostileModule is the committed binary of wasm-examples/hostile/NAME.wat.
func hostileModule(t *testing.T, name string) []byte {
	t.Helper()
	return testwasm.HostileModule(t, name)
}

// TestSuperviseResidentBound: a guest growing a table without a maximum,
// which no linear-memory allocator sees, is killed at the runner's resident
// bound with E4001, under a 1 MiB memory limit.
func TestSuperviseResidentBound(t *testing.T) {
	s := Spec{Module: hostileModule(t, "table-growth"), Name: "t", MemoryPages: 16, WallTime: 30 * time.Second}
	_, err := Supervise(context.Background(), testExe(t), s, Hooks{})
	if codeOf(err) != errcode.MemoryLimit || !strings.Contains(err.Error(), "resident memory") {
		t.Fatalf("got %v, want E4001 at the resident bound", err)
	}
	if b := residentBound(s); b != 2<<20+residentOverhead+residentPerModuleByte*uint64(len(s.Module)) {
		t.Errorf("resident bound %d", b)
	}
	// A run that may interpret while it compiles holds the interpreter's
	// module too; without a cache it never interprets.
	s.InterpretFirst = true
	if b := residentBound(s); b != 2<<20+residentOverhead+residentPerModuleByte*uint64(len(s.Module)) {
		t.Errorf("resident bound %d with InterpretFirst and no cache", b)
	}
	s.CacheDir = t.TempDir()
	if b := residentBound(s); b != 2<<20+residentOverhead+(residentPerModuleByte+residentInterpretedPerModuleByte)*uint64(len(s.Module)) {
		t.Errorf("resident bound %d with InterpretFirst", b)
	}
}

// TestSuperviseCompileBound: a module within the structure limits that
// compiles for seconds (four functions nested 5,000 deep) is killed at its
// compile bound with E4002, before the wall-time clock even starts.
func TestSuperviseCompileBound(t *testing.T) {
	const funcs = 4
	body := append(append([]byte{0}, bytes.Repeat([]byte{0x02, 0x40}, maxNesting)...), bytes.Repeat([]byte{0x0b}, maxNesting+1)...)
	code := [][]byte{{funcs}}
	for range funcs {
		code = append(code, uleb(uint64(len(body))), body)
	}
	mod := wasmModule(
		section(1, []byte{1, 0x60, 0, 0}),
		section(3, []byte{funcs, 0, 0, 0, 0}),
		section(7, []byte{1, 6}, []byte("_start"), []byte{0, 0}),
		section(10, code...),
	)
	if err := checkModule(mod, 1<<20); err != nil {
		t.Fatalf("the module must pass the structure limits: %v", err)
	}
	s := Spec{Module: mod, Name: "c", MemoryPages: 16, WallTime: 30 * time.Second, CompileTime: 300 * time.Millisecond}
	_, err := Supervise(context.Background(), testExe(t), s, Hooks{Ready: func() { t.Error("the runner finished compiling") }})
	if codeOf(err) != errcode.WallTimeLimit || !strings.Contains(err.Error(), "compiling") {
		t.Fatalf("got %v, want E4002 while compiling", err)
	}
	// The default bound: the wall time, but at least 5 s and 2 s per MiB.
	for _, tc := range []struct {
		wall   time.Duration
		module int
		want   time.Duration
	}{
		{time.Second, 0, 5 * time.Second},
		{time.Second, 3 << 20, 11 * time.Second},
		{5 * time.Minute, 3 << 20, 5 * time.Minute},
		{0, 3 << 20, 0},
	} {
		if got := compileBound(Spec{WallTime: tc.wall, Module: make([]byte, tc.module)}); got != tc.want {
			t.Errorf("wall %v, module %d bytes: compile bound %v, want %v", tc.wall, tc.module, got, tc.want)
		}
	}
}

// TestSuperviseWallTimeIsTight: a spinning guest with a 300 ms wall time
// ends with E4002 well within 1.5 s of its start (the limit, the runner's
// grace and a loaded machine's slack): a bound on the implementation, which
// a limit enforced ten times too loosely breaks.
func TestSuperviseWallTimeIsTight(t *testing.T) {
	s, _, _ := spec(t, "crash", "spin")
	s.WallTime = 300 * time.Millisecond
	var started time.Time
	_, err := Supervise(context.Background(), testExe(t), s, Hooks{Ready: func() { started = time.Now() }})
	took := time.Since(started)
	if codeOf(err) != errcode.WallTimeLimit {
		t.Fatalf("got %v, want E4002", err)
	}
	if started.IsZero() || took > 1500*time.Millisecond {
		t.Errorf("a 300 ms wall time ended the run %v after it started", took)
	}
}

// TestMemoryLimitIsExact: memory grows to exactly its limit, and not one
// page past it, supervised and in process.
func TestMemoryLimitIsExact(t *testing.T) {
	for _, tc := range []struct {
		module string
		code   errcode.Code
	}{{"memory-at-limit", 0}, {"memory-past-limit", errcode.MemoryLimit}} {
		s := Spec{Module: hostileModule(t, tc.module), Name: "m", MemoryPages: 16, WallTime: 30 * time.Second}
		if _, err := Supervise(context.Background(), testExe(t), s, Hooks{}); codeOf(err) != tc.code {
			t.Errorf("%s supervised: %v, want %v", tc.module, err, tc.code)
		}
		s.Preempt = true
		if _, err := Run(context.Background(), s); codeOf(err) != tc.code {
			t.Errorf("%s in process: %v, want %v", tc.module, err, tc.code)
		}
	}
}
