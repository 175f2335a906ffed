package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/shim"
)

func codeOf(err error) errcode.Code {
	var e *errcode.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// spec returns a run of the named example with tight but sufficient limits.
// Its compile bound is generous: an example's first compile in a package
// run takes 10-30 s on a loaded machine, and these tests are not about
// the compile bound (TestSuperviseCompileBound and
// TestWarmIdlesPastCompileBound set their own).
func spec(t *testing.T, example string, args ...string) (Spec, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return Spec{
		Module:      testwasm.Module(t, example),
		Name:        example,
		Args:        args,
		Env:         map[string]string{},
		MemoryPages: 1024, // 64 MiB
		WallTime:    30 * time.Second,
		CompileTime: 3 * time.Minute,
		OutputBytes: 1 << 20,
		Stdout:      &stdout,
		Stderr:      &stderr,
		CacheDir:    sharedCache(t),
	}, &stdout, &stderr
}

// testCache keeps compiled examples between the tests of this package, so
// each example compiles once; TestMain removes it.
var testCache string

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == RunnerArg {
		os.Exit(RunChild())
	}
	dir, err := os.MkdirTemp("", "ampoule-runtime-test-")
	if err != nil {
		panic(err)
	}
	testCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func sharedCache(t *testing.T) string { return testCache }

func TestHello(t *testing.T) {
	s, stdout, _ := spec(t, "hello", "Ada", "Lovelace")
	s.Env = map[string]string{"GREETING": "Bonjour", "B": "2", "A": "1"}
	res, err := Run(context.Background(), s)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	for _, want := range []string{
		"Bonjour, Ada Lovelace, from inside wazero!\n",
		`argv: ["hello" "Ada" "Lovelace"]`,
		`env: ["A=1" "B=2" "GREETING=Bonjour"]`,
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for _, code := range []uint32{0, 1, 3, 42, 255, 300} {
		s, _, _ := spec(t, "crash", "exit", itoa(code))
		res, err := Run(context.Background(), s)
		if err != nil {
			t.Fatalf("exit %d: %v", code, err)
		}
		if res.ExitCode != code {
			t.Errorf("exit %d: got %d", code, res.ExitCode)
		}
	}
}

func itoa(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestPanicAndTrap(t *testing.T) {
	s, _, stderr := spec(t, "crash", "panic")
	res, err := Run(context.Background(), s)
	if err != nil || res.ExitCode != 2 {
		t.Errorf("a Go panic should exit 2: %+v %v", res, err)
	}
	if !strings.Contains(stderr.String(), "deliberate panic") {
		t.Errorf("the panic message did not reach stderr: %s", stderr)
	}

	s, _, _ = spec(t, "crash", "trap")
	_, err = Run(context.Background(), s)
	if codeOf(err) != errcode.WorkloadTrap || !strings.Contains(err.Error(), "out of bounds memory access") {
		t.Errorf("trap: %v", err)
	}

	s = Spec{Module: testwasm.Assemble(testwasm.Spec{Start: testwasm.Unreachable}), Name: "u", MemoryPages: 16, WallTime: 10 * time.Second}
	_, err = Run(context.Background(), s)
	if codeOf(err) != errcode.WorkloadTrap || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("unreachable: %v", err)
	}
}

func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		tune func(*Spec)
		code errcode.Code
		says string // the error states the limit's value
	}{
		{"memory", []string{"oom"}, nil, errcode.MemoryLimit, "memory limit 64 MiB reached"},
		{"wall time spinning", []string{"spin"}, func(s *Spec) { s.WallTime = 300 * time.Millisecond; s.Preempt = true }, errcode.WallTimeLimit, "wall-time limit 300ms reached"},
		{"wall time sleeping", []string{"sleep"}, func(s *Spec) { s.WallTime = 300 * time.Millisecond }, errcode.WallTimeLimit, "wall-time limit 300ms reached"},
		{"output", []string{"flood"}, nil, errcode.OutputLimit, "output limit 1 MiB reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, stdout, stderr := spec(t, "crash", tc.args...)
			if tc.tune != nil {
				tc.tune(&s)
			}
			_, err := Run(context.Background(), s)
			if codeOf(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%v does not say %q", err, tc.says)
			}
			if tc.code == errcode.OutputLimit {
				if n := stdout.Len() + stderr.Len(); int64(n) != s.OutputBytes {
					t.Errorf("wrote %d bytes, want exactly the limit %d", n, s.OutputBytes)
				}
			}
		})
	}
}

func TestInitialMemoryAboveLimit(t *testing.T) {
	for _, exported := range []bool{true, false} {
		mod := testwasm.Assemble(testwasm.Spec{Memory: true, MemoryMin: 100, ExportMemory: exported})
		_, err := Run(context.Background(), Spec{Module: mod, Name: "m", MemoryPages: 10, WallTime: 10 * time.Second})
		if codeOf(err) != errcode.MemoryLimit {
			t.Errorf("exported=%v: %v, want MemoryLimit", exported, err)
		}
		_, err = Run(context.Background(), Spec{Module: mod, Name: "m", MemoryPages: 100, WallTime: 10 * time.Second})
		if err != nil {
			t.Errorf("exported=%v: a module at its limit was refused: %v", exported, err)
		}
	}
}

// TestCancelStopsAnyWorkload proves a cancelled preemptible run ends promptly
// whether the workload spins, sleeps or waits on stdin, and leaves no
// goroutine behind.
func TestCancelStopsAnyWorkload(t *testing.T) {
	before := goruntime.NumGoroutine()
	for _, mode := range []string{"spin", "sleep", "stdin"} {
		t.Run(mode, func(t *testing.T) {
			s, _, stderr := spec(t, "crash", mode)
			s.Preempt = true
			err := cancelWhenRunning(t, s, stderr, "mode "+mode)
			if codeOf(err) != errcode.Interrupted {
				t.Errorf("got %v, want Interrupted", err)
			}
		})
	}
	// The stdin reader exits once its run is cancelled and its read returns;
	// give goroutines a moment to unwind.
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := goruntime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines before, %d after", before, n)
	}
}

// TestWithoutPreemptRunReturnsAtOnce proves that without Preempt a run still
// ends promptly with its code, and that the guest, parked at its next host
// call, has no further effect: no output reaches the host after the end.
func TestWithoutPreemptRunReturnsAtOnce(t *testing.T) {
	for _, mode := range []string{"sleep", "stdin"} {
		t.Run(mode, func(t *testing.T) {
			s, _, stderr := spec(t, "crash", mode)
			err := cancelWhenRunning(t, s, stderr, "mode "+mode)
			if codeOf(err) != errcode.Interrupted {
				t.Errorf("got %v, want Interrupted", err)
			}
		})
	}
	s, stdout, stderr := spec(t, "crash", "flood")
	_, err := Run(context.Background(), s)
	if codeOf(err) != errcode.OutputLimit {
		t.Fatalf("flood: %v", err)
	}
	n := stdout.Len() + stderr.Len()
	time.Sleep(100 * time.Millisecond)
	if m := stdout.Len() + stderr.Len(); m != n || int64(m) != s.OutputBytes {
		t.Errorf("output went on after the run ended: %d then %d bytes (limit %d)", n, m, s.OutputBytes)
	}
}

// cancelWhenRunning starts s, waits until stderr shows marker, cancels, and
// returns Run's error; it fails the test if Run does not return in 5 s.
func cancelWhenRunning(t *testing.T, s Spec, stderr *bytes.Buffer, marker string) error {
	t.Helper()
	pr, pw := io.Pipe() // an idle stdin
	t.Cleanup(func() { pw.Close() })
	s.Stdin = pr
	var mu testwasm.SyncBuffer
	s.Stderr = &mu
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := Run(ctx, s); done <- err }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(mu.String(), marker) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the run did not stop after cancel")
		return nil
	}
}

func TestStdin(t *testing.T) {
	s, stdout, _ := spec(t, "crash", "stdin")
	s.Stdin = strings.NewReader("x")
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "stdin returned 1 <nil>") {
		t.Errorf("stdout = %q", stdout)
	}
}

func TestImportsAreChecked(t *testing.T) {
	i32 := byte(0x7f)
	for _, tc := range []struct {
		name string
		imp  testwasm.Import
		want string
	}{
		{"other module", testwasm.Import{Module: "env", Name: "abort"}, "env.abort"},
		{"unknown wasi function", testwasm.Import{Module: shim.WASIModule, Name: "sock_connect"}, "sock_connect"},
		{"wrong signature", testwasm.Import{Module: shim.WASIModule, Name: "proc_exit", Params: []byte{i32, i32}}, "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mod := testwasm.Assemble(testwasm.Spec{Imports: []testwasm.Import{tc.imp}})
			_, err := Run(context.Background(), Spec{Module: mod, Name: "i", MemoryPages: 16, WallTime: 10 * time.Second})
			if codeOf(err) != errcode.ModuleImportDenied || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ModuleImportDenied naming %q", err, tc.want)
			}
		})
	}
	// A correct WASI import runs.
	mod := testwasm.Assemble(testwasm.Spec{
		Imports: []testwasm.Import{{Module: shim.WASIModule, Name: "proc_exit", Params: []byte{i32}}},
		Start:   []byte{0x41, 0x05, 0x10, 0x00}, // i32.const 5; call 0
	})
	res, err := Run(context.Background(), Spec{Module: mod, Name: "i", MemoryPages: 16, WallTime: 10 * time.Second})
	if err != nil || res.ExitCode != 5 {
		t.Errorf("proc_exit(5): %+v %v", res, err)
	}
}

func TestInvalidModule(t *testing.T) {
	good := testwasm.Assemble(testwasm.Spec{})
	for name, mod := range map[string][]byte{
		"truncated": good[:len(good)-3],
		"garbage":   append(append([]byte{}, good[:8]...), 0xff, 0xff, 0xff),
		"bad body":  testwasm.Assemble(testwasm.Spec{Start: []byte{0x6a}}), // i32.add on an empty stack
	} {
		_, err := Run(context.Background(), Spec{Module: mod, Name: "x", MemoryPages: 16, WallTime: 10 * time.Second})
		if codeOf(err) != errcode.ModuleInvalid {
			t.Errorf("%s: %v, want ModuleInvalid", name, err)
		}
	}
}

func TestDirs(t *testing.T) {
	dir := testwasm.Example(t, "files")
	out := t.TempDir()
	s, stdout, stderr := spec(t, "files")
	s.Dirs = []Mount{{Host: filepath.Join(dir, "data"), Guest: "/data"}, {Host: out, Guest: "/out", Writable: true}}
	res, err := Run(context.Background(), s)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("Run = %+v %v\n%s", res, err, stderr)
	}
	for _, want := range []string{"greek.txt: 3 lines, 17 bytes", "write to /data refused", "wrote /out/report.txt"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "written-by-guest.txt")); err == nil {
		t.Error("the guest wrote into a read-only mount")
	}
	report, err := os.ReadFile(filepath.Join(out, "report.txt"))
	if err != nil || !strings.Contains(string(report), "about.txt: 1 lines") {
		t.Errorf("report = %q, %v", report, err)
	}

	s.Dirs = []Mount{{Host: filepath.Join(dir, "missing"), Guest: "/data"}}
	if _, err := Run(context.Background(), s); codeOf(err) != errcode.DirInvalid {
		t.Errorf("missing host dir: %v", err)
	}
}

func TestCompilationCache(t *testing.T) {
	cache := t.TempDir()
	for i := 0; i < 2; i++ {
		s, stdout, _ := spec(t, "hello")
		s.CacheDir = cache
		if _, err := Run(context.Background(), s); err != nil || !strings.Contains(stdout.String(), "Hello") {
			t.Fatalf("run %d: %v %q", i, err, stdout)
		}
	}
	var files int
	filepath.WalkDir(cache, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Error("nothing was cached")
	}

	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	s, _, _ := spec(t, "hello")
	s.CacheDir = filepath.Join(notDir, "sub")
	if _, err := Run(context.Background(), s); codeOf(err) != errcode.CacheUnavailable {
		t.Errorf("unusable cache dir: %v", err)
	}
}
