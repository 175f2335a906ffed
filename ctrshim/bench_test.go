package ctrshim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/ctrshim"
)

// shimModes are the two ways the benchmarks run containers: warm, the
// shim as shipped (one lingering shim for the namespace, which holds
// servers servers and runners idle runners between runs), and cold
// (AMPOULE_SHIM_WARM=0: a shim and a runner per container).
var shimModes = []struct {
	name             string
	env              []string
	servers, runners int
}{{"warm", nil, 1, spare}, {"cold", []string{noWarm}, 0, 0}}

// BenchmarkContainerdRun starts and stops one container a loop, 'ctr run
// --rm' of the tiny bundle under debug on the simulator, through a real
// containerd: each iteration's whole time (ctr's own process, containerd,
// the shim's start or reuse, the run and the delete), as p50 and p99, with
// warm runners (one lingering shim for the namespace) and without (a shim
// and a runner per container). After the loop no more shims, runners,
// mounts or containerd descriptors are held than after the first run, and
// none once the shim's linger is over. Run it with -benchtime 50x.
func BenchmarkContainerdRun(b *testing.B) {
	for _, mode := range shimModes {
		b.Run(mode.name, func(b *testing.B) {
			c := startCluster(b, mode.env...)
			k := &criClient{c: c}
			c.image("example.com/tiny:1", "../testdata/tiny/module.wasm", "name = \"tiny\"\nprofiles = [\"debug\"]\n")
			// One run first, so the compilation cache is warm, containerd
			// has opened what it keeps open and a warm shim is there.
			if out, errs, code := c.run("warm", "example.com/tiny:1", "run.ampoule.profile=debug", "run.ampoule.backend=sim"); code != 0 {
				b.Fatalf("exit %d\n%s%s", code, out, errs)
			}
			before := k.waitHeld(b, mode.servers, mode.runners)
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
			report(b, "run", took, func(d time.Duration) time.Duration { return d })
			noGrowth(b, fmt.Sprintf("%d containers", b.N), before, k.settle(b, before, 5*time.Second))
			k.noneLeft(b)
			if ents, _ := os.ReadDir(filepath.Join(c.dir, "state", "io.containerd.runtime.v2.task", "default")); len(ents) > 0 {
				b.Errorf("task state left: %d entries", len(ents))
			}
		})
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
