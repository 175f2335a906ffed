package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// moduleFiles are the paths through /proc of every memory file holding a
// module, in this process and in its children (the runners): those a
// process of the same user could open while their owner is dumpable.
func moduleFiles() []string {
	var dirs []string
	dirs = append(dirs, "/proc/self/fd")
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		for _, pid := range strings.Fields(string(data)) {
			dirs = append(dirs, "/proc/"+pid+"/fd")
		}
	}
	var files []string
	for _, d := range dirs {
		des, _ := os.ReadDir(d)
		for _, de := range des {
			p := filepath.Join(d, de.Name())
			if l, err := os.Readlink(p); err == nil && strings.HasPrefix(l, "/memfd:ampoule-module") {
				files = append(files, p)
			}
		}
	}
	return files
}

// TestHostRacesTheModuleFile: the module's memory file is filled and
// sealed once the runner has started. A process of the same user that
// opens it through /proc (the launcher's descriptor, or the runner's
// while it is dumpable) and writes another module of the same size into
// it, or holds it mapped writable, as often as it can while runs start,
// gets none of its bytes run: every run either runs the module the
// supervisor was given or is refused (E5001) before its runner reads it.
func TestHostRacesTheModuleFile(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(testwasm.Root(t), "testdata", "tiny", "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(good, []byte("hello from a tiny"), []byte("pwned from a tiny"), 1)
	if bytes.Equal(bad, good) || len(bad) != len(good) {
		t.Fatal("the test's other module is not another module of the same size")
	}
	var wrote, mapped atomic.Int64
	stop := make(chan struct{})
	var attackers sync.WaitGroup
	for i := range 2 {
		attackers.Add(1)
		go func() {
			defer attackers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, p := range moduleFiles() {
					f, err := os.OpenFile(p, os.O_RDWR, 0)
					if err != nil {
						continue
					}
					if i == 0 {
						if _, err := f.WriteAt(bad, 0); err == nil {
							wrote.Add(1)
						}
					} else if st, err := f.Stat(); err != nil || st.Size() < int64(len(bad)) {
						// Not filled yet: a mapping past its end faults.
					} else if m, err := unix.Mmap(int(f.Fd()), 0, len(bad), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
						// Held across the seals, writing through it.
						copy(m, bad)
						mapped.Add(1)
						time.Sleep(time.Millisecond)
						unix.Munmap(m)
					}
					f.Close()
				}
			}
		}()
	}
	defer func() {
		close(stop)
		attackers.Wait()
	}()
	refused := 0
	for range 40 {
		var stdout, stderr bytes.Buffer
		res, err := Supervise(context.Background(), testExe(t), Spec{
			Module: good, Name: "tiny", MemoryPages: 16, WallTime: 30 * time.Second, CompileTime: 3 * time.Minute,
			OutputBytes: 1 << 20, Stdout: &stdout, Stderr: &stderr,
		}, Hooks{})
		if strings.Contains(stdout.String(), "pwned") {
			t.Fatalf("the runner ran the bytes another process wrote into the module's file: %q", stdout.String())
		}
		if err != nil {
			if c := errcode.From(err).Code; c != errcode.Internal {
				t.Fatalf("a raced run ended with %v (code %s), want its module's output or %s", err, c, errcode.Internal)
			}
			refused++
			continue
		}
		if res.ExitCode != 0 || stdout.String() != "hello from a tiny module\n" {
			t.Fatalf("a run: exit %d, stdout %q", res.ExitCode, stdout.String())
		}
	}
	t.Logf("40 runs: %d refused; the attackers wrote %d times and mapped %d times", refused, wrote.Load(), mapped.Load())
}
