package sandbox

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

var (
	bigGuestOnce sync.Once
	bigGuestWasm []byte
	bigGuestErr  error
)

// bigGuest is testdata/bigguest built for GOOS=wasip1, once per test
// binary: a 17 MB Go module.
func bigGuest(t *testing.T) []byte {
	t.Helper()
	bigGuestOnce.Do(func() {
		out := filepath.Join(os.TempDir(), "ampoule-bigguest-"+filepath.Base(os.Args[0])+".wasm")
		defer os.Remove(out)
		cmd := exec.Command("go", "build", "-o", out, "./sandbox/testdata/bigguest")
		cmd.Dir = testwasm.Root(t)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			bigGuestErr = &buildError{err, b}
			return
		}
		bigGuestWasm, bigGuestErr = os.ReadFile(out)
	})
	if bigGuestErr != nil {
		t.Fatalf("building testdata/bigguest: %v", bigGuestErr)
	}
	return bigGuestWasm
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + string(e.out) }

// peakResident runs spec's module in a runner and returns the runner's
// peak resident set (getrusage's maxrss) and how the cache served it. The
// guest (bigguest wait) reads its stdin to the end first: an interpreted
// run's stdin is closed only once the compile beside it has filled the
// cache, so that both engines are alive for the whole compile, the most a
// run with InterpretFirst holds at once; a compiled run's at once.
func peakResident(t *testing.T, s Spec) (uint64, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// start's streams are files.
	stdout, stderr := streamFile(t), streamFile(t)
	// The runner is the launch binary as shipped, not this test binary:
	// built with -race, that one holds several times a runner's memory,
	// and its peak would say nothing of the bound, which is a shipped
	// runner's.
	p, err := start(testwasm.Launch(t), s, r, stdout, stderr, false)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	var served string
	go func() {
		res, err := p.finish(context.Background(), Hooks{WaitExit: true, Compiled: func(c string) { served = c }}, false)
		done <- outcome{res, err}
	}()
	if s.InterpretFirst {
		// The runner's mark, in a cache directory of this run alone: by
		// pattern, as the launch binary names it with its own build's
		// wazero version, which a test binary's build information may
		// not carry.
		deadline := time.Now().Add(3 * time.Minute)
		for {
			if marks, _ := filepath.Glob(filepath.Join(s.CacheDir, "compiled-*")); len(marks) > 0 {
				break
			}
			select {
			case o := <-done:
				t.Fatalf("the interpreted run ended before its compile did: %+v %v\n%s", o.res, o.err, fileText(stderr))
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				p.kill()
				t.Fatal("the compile beside the interpreted run did not end")
			}
		}
	}
	w.Close()
	o := <-done
	if o.err != nil || o.res.ExitCode != 0 || !bytes.Contains([]byte(fileText(stdout)), []byte("bigguest: 48 digits, status 404\n")) {
		t.Fatalf("interpret-first %v: %+v %v, stdout %q, stderr %q", s.InterpretFirst, o.res, o.err, fileText(stdout), fileText(stderr))
	}
	<-p.exited
	ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Fatal("no rusage for the runner")
	}
	return uint64(ru.Maxrss) << 10, served
}

// TestInterpretFirstResident bounds the resident memory of a run of a
// large module with InterpretFirst. By the design, such a run holds what a
// compiling run does (the runner, the compiler's working set, the code it
// makes) and, for as long as the guest runs, the interpreter's whole
// module beside it; so its peak may pass a compiling run's peak by the
// interpreter's module, which the supervisor allows for at
// residentInterpretedPerModuleByte (twice what was measured) and no
// more. The guest here runs for the whole compile. The test fails if the
// interpreted run costs more than that allowance over the compiled one
// (a second copy of the module kept, or the compiler's working set kept
// past the compile), or more than the bound its supervisor enforces.
func TestInterpretFirstResident(t *testing.T) {
	module := bigGuest(t)
	peaks := map[bool]uint64{}
	for _, interpret := range []bool{false, true} {
		s := Spec{Module: module, Name: "bigguest", Args: []string{"wait"}, Env: map[string]string{},
			MemoryPages: 1024, WallTime: 5 * time.Minute, CompileTime: 5 * time.Minute, OutputBytes: 1 << 20,
			CacheDir: t.TempDir(), InterpretFirst: interpret}
		peak, served := peakResident(t, s)
		want := CacheMiss
		if interpret {
			want = CacheInterpreted
		}
		if served != want {
			t.Fatalf("interpret-first %v: the cache served %q, want %q", interpret, served, want)
		}
		if bound := residentBound(s); peak > bound {
			t.Errorf("interpret-first %v: peak resident %d MB, above the supervisor's bound of %d MB", interpret, peak>>20, bound>>20)
		}
		peaks[interpret] = peak
		t.Logf("interpret-first %v: module %.1f MB, runner's peak resident %d MB", interpret, float64(len(module))/1e6, peak>>20)
	}
	extra := int64(peaks[true]) - int64(peaks[false])
	allowed := int64(residentInterpretedPerModuleByte) * int64(len(module))
	t.Logf("the interpreter's module: %d MB over the compiled run's peak (%.1f bytes per byte of module), allowed %d MB",
		extra>>20, float64(extra)/float64(len(module)), allowed>>20)
	if extra > allowed {
		t.Errorf("the interpreted run's peak passes the compiled run's by %d MB, more than the %d MB the design allows for the interpreter's module", extra>>20, allowed>>20)
	}
}

// streamFile is a file for one of a runner's streams, removed at the
// test's end.
func streamFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fileText is what a stream's file holds so far.
func fileText(f *os.File) string {
	b, _ := os.ReadFile(f.Name())
	return string(b)
}
