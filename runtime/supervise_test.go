package runtime

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
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
	res, err := Supervise(context.Background(), testExe(t), s, nil)
	if err != nil || res.ExitCode != 0 || !strings.Contains(stdout.String(), "Hi, Ada, from inside wazero!") {
		t.Fatalf("%+v %v %q", res, err, stdout)
	}
	s, _, _ = spec(t, "crash", "exit", "42")
	if res, err := Supervise(context.Background(), testExe(t), s, nil); err != nil || res.ExitCode != 42 {
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
			_, err := Supervise(context.Background(), testExe(t), s, nil)
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
			var stderr syncWriter
			s.Stderr = &stderr
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { _, err := Supervise(ctx, testExe(t), s, nil); done <- err }()
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
