package ctrshim_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/ampoule-run/ampoule/ctrshim"
)

// spare is how many idle warm runners a warm shim keeps for a bundle
// (ampoule.ServerConfig's default).
const spare = 2

// noWarm is the shim's environment without warm runners: one shim per
// pod, a runner started for each container.
const noWarm = ctrshim.EnvWarm + "=0"

// held is what the node holds at one moment, for the leak checks: the
// shims (servers and runners apart), the mounts beneath the test's
// directory, containerd's descriptors and the shim sockets.
type held struct {
	servers, runners, mounts []string
	fds, sockets             int
}

func (k *criClient) held(t testing.TB) held {
	c := k.c
	return held{servers: c.servers(), runners: c.runners(), mounts: c.mounts(), fds: containerdFDs(t, c), sockets: len(socketFiles())}
}

// noGrowth fails unless the node holds no more than it did before: no
// more shims, runners, mounts or shim sockets, and containerd no more
// than 2 descriptors more (its own caches' slack).
func noGrowth(t testing.TB, what string, before, after held) {
	t.Helper()
	if len(after.servers) > len(before.servers) {
		t.Errorf("after %s: shims %v, before %v", what, after.servers, before.servers)
	}
	if len(after.runners) > len(before.runners) {
		t.Errorf("after %s: runners %v, before %v", what, after.runners, before.runners)
	}
	if len(after.mounts) > len(before.mounts) {
		t.Errorf("after %s: mounts %v, before %v", what, after.mounts, before.mounts)
	}
	if after.fds > before.fds+2 {
		t.Errorf("after %s: containerd holds %d descriptors, %d before", what, after.fds, before.fds)
	}
	if after.sockets > before.sockets {
		t.Errorf("after %s: %d shim sockets in %s, %d before", what, after.sockets, ctrshim.SocketDir, before.sockets)
	}
}

// settle waits up to within for the node to hold no more than before
// (a shim's delete and a runner's replacement finish in the background).
func (k *criClient) settle(t testing.TB, before held, within time.Duration) held {
	deadline := time.Now().Add(within)
	for {
		h := k.held(t)
		if (len(h.servers) <= len(before.servers) && len(h.runners) <= len(before.runners) && len(h.mounts) <= len(before.mounts)) ||
			time.Now().After(deadline) {
			return h
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitHeld waits up to 5 s for the node to hold servers shims and
// runners runners (a warm shim's replacements start in the background),
// and returns what it holds then.
func (k *criClient) waitHeld(t testing.TB, servers, runners int) held {
	deadline := time.Now().Add(5 * time.Second)
	for {
		h := k.held(t)
		if (len(h.servers) == servers && len(h.runners) == runners) || time.Now().After(deadline) {
			return h
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// podTimes is one pod's cycle: start is RunPodSandbox until
// StartContainer returned (the workload measured, attested and about to
// run); cycle is the whole, to RemovePodSandbox.
type podTimes struct{ start, cycle time.Duration }

// podCycle runs one pod with one container of ref, which must exit 0,
// and stops and removes it. It returns the times, the container's id and
// the runners idle just before StartContainer.
func (k *criClient) podCycle(t testing.TB, name, ref string, annotations map[string]string) (podTimes, string, []string) {
	t.Helper()
	t0 := time.Now()
	pod, pcfg := k.pod(t, name, annotations)
	ctx, cancel := ctxT()
	defer cancel()
	cr, err := k.CreateContainer(ctx, &cri.CreateContainerRequest{PodSandboxId: pod, SandboxConfig: pcfg,
		Config: &cri.ContainerConfig{Metadata: &cri.ContainerMetadata{Name: "c"}, Image: &cri.ImageSpec{Image: ref}, LogPath: "c.log"}})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	idle := k.c.runners()
	if _, err := k.StartContainer(ctx, &cri.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	start := time.Since(t0)
	if st := k.exited(t, cr.ContainerId, 30*time.Second); st.ExitCode != 0 {
		t.Fatalf("pod %s: exit %d (%s: %s)", name, st.ExitCode, st.Reason, st.Message)
	}
	k.stopPod(t, pod)
	return podTimes{start: start, cycle: time.Since(t0)}, cr.ContainerId, idle
}

// startPID is the pid the shim's /tasks/start event gave for container
// id, as containerd's event stream shows it; 0 if none.
func (c *cluster) startPID(id string) int {
	for _, l := range strings.Split(c.events.String(), "\n") {
		i := strings.Index(l, "/tasks/start ")
		if i < 0 {
			continue
		}
		var ev struct {
			ContainerID string `json:"container_id"`
			Pid         int    `json:"pid"`
		}
		if json.Unmarshal([]byte(strings.TrimSpace(l[i+len("/tasks/start "):])), &ev) == nil && ev.ContainerID == id {
			return ev.Pid
		}
	}
	return 0
}

var debugSim = map[string]string{"run.ampoule.profile": "debug", "run.ampoule.backend": "sim"}

// Pods through CRI with warm runners: five pods one after another, each
// container run by a runner that was already waiting before its
// StartContainer (its pid is the start event's); a guest asleep in
// poll_oneoff on a warm runner stopped within 1 s; no shim, runner, mount,
// socket or containerd descriptor more after the pods than before, and
// none at all once the shim's linger is over.
func TestCRIPods(t *testing.T) {
	k := startCRI(t)
	c := k.c
	c.image("example.com/tiny:1", "../testdata/tiny/module.wasm", "name = \"tiny\"\nprofiles = [\"debug\"]\n")
	c.image("example.com/sleep:1", "../wasm-examples/hostile/sleep-forever.wasm",
		"name = \"sleep\"\nprofiles = [\"debug\"]\n[limits]\nwall_time = \"200s\"\n")
	for _, ref := range []string{criPause, "example.com/tiny:1", "example.com/sleep:1"} {
		k.imageKnown(t, ref)
	}
	k.podCycle(t, "warmup", "example.com/tiny:1", debugSim)
	before := k.waitHeld(t, 1, spare)
	if len(before.servers) != 1 || len(before.runners) == 0 {
		t.Fatalf("after one pod, want the node's one shim lingering with warm runners: shims %v, runners %v", before.servers, before.runners)
	}
	for i := range 5 {
		_, id, idle := k.podCycle(t, fmt.Sprintf("pod%d", i), "example.com/tiny:1", debugSim)
		pid := c.startPID(id)
		if pid == 0 {
			t.Errorf("pod %d: no /tasks/start event for %s", i, id)
		} else if !slices.Contains(idle, fmt.Sprint(pid)) {
			t.Errorf("pod %d ran in pid %d, not one of the runners idle before its start %v", i, pid, idle)
		}
	}
	noGrowth(t, "5 pods", before, k.settle(t, before, 5*time.Second))

	// A kill of a guest in poll_oneoff, its runner a warm one the first
	// sleeping pod's run left.
	for i := range 2 {
		pod, pcfg := k.pod(t, fmt.Sprintf("sleep%d", i), debugSim)
		idle := c.runners()
		sleep := k.container(t, pod, pcfg, "sleep", "example.com/sleep:1")
		time.Sleep(300 * time.Millisecond) // into poll_oneoff's day-long sleep
		took, st := k.stopTimed(t, sleep)
		warm := slices.Contains(idle, fmt.Sprint(c.startPID(sleep)))
		t.Logf("sleeping guest %d (warm runner: %v) stopped %v after StopContainer, exit %d", i, warm, took, st.ExitCode)
		if i == 1 && !warm {
			t.Errorf("the second sleeping guest's runner (pid %d) was not warm: idle were %v", c.startPID(sleep), idle)
		}
		if took > time.Second || st.ExitCode != 128+9 {
			t.Errorf("stopping the sleeping guest took %v (at most 1 s) and exited %d (want 137)", took, st.ExitCode)
		}
		k.stopPod(t, pod)
	}
	// The linger (1 s here) over, the shim and its runners are gone.
	k.noneLeft(t)
	if n := len(socketFiles()); n > before.sockets {
		t.Errorf("shim sockets left: %d, %d while the shim was there", n, before.sockets)
	}
}

// BenchmarkCRIPods runs b.N pods one after another through CRI (run with
// -benchtime 50x), each RunPodSandbox, CreateContainer, StartContainer of
// the tiny bundle (debug, simulator), wait for its exit, StopPodSandbox and
// RemovePodSandbox, with warm runners (one shim for the node) and without
// (a shim per pod, a runner per container). It reports the per-pod start
// (RunPodSandbox until StartContainer returned) and the whole cycle as p50
// and p99, and fails if a shim, runner, mount, socket or containerd
// descriptor is left: more than after the first pod, and anything once the
// shim's linger is over.
func BenchmarkCRIPods(b *testing.B) {
	for _, mode := range shimModes {
		b.Run(mode.name, func(b *testing.B) {
			k := startCRI(b, mode.env...)
			k.c.image("example.com/tiny:1", "../testdata/tiny/module.wasm", "name = \"tiny\"\nprofiles = [\"debug\"]\n")
			k.imageKnown(b, criPause)
			k.imageKnown(b, "example.com/tiny:1")
			k.podCycle(b, "first", "example.com/tiny:1", debugSim)
			before := k.waitHeld(b, mode.servers, mode.runners)
			var times []podTimes
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pt, _, _ := k.podCycle(b, fmt.Sprintf("pod%d", i), "example.com/tiny:1", debugSim)
				times = append(times, pt)
			}
			b.StopTimer()
			report(b, "start", times, func(p podTimes) time.Duration { return p.start })
			report(b, "cycle", times, func(p podTimes) time.Duration { return p.cycle })
			noGrowth(b, fmt.Sprintf("%d pods", b.N), before, k.settle(b, before, 5*time.Second))
			k.noneLeft(b)
		})
	}
}

// report reports the p50 and p99 of one of the times, in ms.
func report[T any](b *testing.B, name string, ts []T, of func(T) time.Duration) {
	d := make([]time.Duration, len(ts))
	for i, t := range ts {
		d[i] = of(t)
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, name+"-p50-ms")
	b.ReportMetric(float64(d[(len(d)*99)/100].Microseconds())/1000, name+"-p99-ms")
}
