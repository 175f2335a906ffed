package ctrshim_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/ctrshim"
)

// BenchmarkContainerdRun starts and stops one container a loop, 'ctr run
// --rm' of the tiny bundle under debug on the simulator, through a real
// containerd: each iteration's whole time (ctr's own process, containerd,
// the shim's start, the run with its runner and the delete), as p50 and
// p99. After the loop no shim, mount or containerd descriptor is left.
// Run it with -benchtime 50x. There are no warm runners in the shim yet:
// each run compiles from the cache on disk.
func BenchmarkContainerdRun(b *testing.B) {
	c := startCluster(b)
	c.image("example.com/tiny:1", "../testdata/tiny/module.wasm", "name = \"tiny\"\nprofiles = [\"debug\"]\n")
	// One run first, so the compilation cache is warm and containerd has
	// opened what it keeps open.
	if out, errs, code := c.run("warm", "example.com/tiny:1", "run.ampoule.profile=debug", "run.ampoule.backend=sim"); code != 0 {
		b.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	fds := containerdFDs(b, c)
	sockets := len(socketFiles())
	var took []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if out, errs, code := c.run("tiny", "example.com/tiny:1", "run.ampoule.profile=debug", "run.ampoule.backend=sim"); code != 0 {
			b.Fatalf("run %d: exit %d\n%s%s", i, code, out, errs)
		}
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[(len(took)*99)/100].Microseconds())/1000, "p99-ms")
	deadline := time.Now().Add(5 * time.Second)
	for len(c.shims()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if p := c.shims(); len(p) > 0 {
		b.Errorf("after %d containers, shims left: %v", b.N, p)
	}
	if m := c.mounts(); len(m) > 0 {
		b.Errorf("after %d containers, mounts left: %v", b.N, m)
	}
	if after := containerdFDs(b, c); after > fds+2 {
		b.Errorf("containerd holds %d descriptors after %d containers, %d before", after, b.N, fds)
	}
	if n := len(socketFiles()); n > sockets {
		b.Errorf("shim sockets left in %s: %d, %d before", ctrshim.SocketDir, n, sockets)
	}
	if ents, _ := os.ReadDir(filepath.Join(c.dir, "state", "io.containerd.runtime.v2.task", "default")); len(ents) > 0 {
		b.Errorf("task state left: %d entries", len(ents))
	}
}

func socketFiles() []os.DirEntry {
	ents, _ := os.ReadDir(ctrshim.SocketDir)
	return ents
}

// containerdFDs counts the descriptors of the test's containerd.
func containerdFDs(b testing.TB, c *cluster) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.HasPrefix(string(cmdline), "containerd\x00--config\x00"+filepath.Join(c.dir, "config.toml")) {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		return len(fds)
	}
	b.Fatal("the test's containerd is not running")
	return 0
}
