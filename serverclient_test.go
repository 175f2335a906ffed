package ampoule

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// childPIDs are the pids of this process's running children.
func childPIDs(t *testing.T) []string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		pids = append(pids, strings.Fields(string(data))...)
	}
	return pids
}

// floodBundle is stdout-flood (64 KiB to stdout, forever) under debug,
// ended by its wall time.
func floodBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	module, err := os.ReadFile(filepath.Join(testwasm.Root(t), "wasm-examples", "hostile", "stdout-flood.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := "name = \"flood\"\nprofiles = [\"debug\"]\n[limits]\noutput = \"1GiB\"\nwall_time = \"2s\"\n"
	if err := os.WriteFile(filepath.Join(dir, "ampoule.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestServerClientGoneOrStalled: a client that sends its request and
// then goes away mid-run (its connection closed), or stays but stops
// reading while the workload floods its stdout, leaves nothing behind on
// the server once the run's wall time (and for the one that stays,
// clientWait) has passed: no runner, no descriptor (its connection
// included), no slot (MaxRuns is 1), and the server serves on. Without
// the bound, the runner's exit waited for its stdout's copy, which waited
// for the stalled client, for as long as it stayed connected.
func TestServerClientGoneOrStalled(t *testing.T) {
	dir := t.TempDir()
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 1, WarmBudget: -1})
	addr := startWire(t, s)
	bundle := floodBundle(t)
	// One run first, so that what the server keeps for good (its
	// listener, the compile cache, the runtime's own) is open before the
	// count.
	var out strings.Builder
	hello := testwasm.Example(t, "hello")
	if _, err := RunRemote(t.Context(), addr, hello, serverConfig(t, dir, &out)); err != nil {
		t.Fatal(err)
	}
	fds := countFDs(t)
	for _, leave := range []string{"gone", "stalled"} {
		cfg := serverConfig(t, dir, &out)
		req, err := remoteRequest(bundle, cfg, NewRef())
		if err != nil {
			t.Fatal(err)
		}
		nc, err := net.Dial("unix", socketPath(addr))
		if err != nil {
			t.Fatal(err)
		}
		c := &conn{w: bufio.NewWriter(nc), nc: nc}
		data, _ := json.Marshal(req)
		if err := c.send(frameRequest, data); err != nil {
			t.Fatal(err)
		}
		// Until its runner runs.
		for len(childPIDs(t)) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		if leave == "gone" {
			nc.Close()
		}
		// Past the run's wall time, its kill, the server's unwinding and,
		// for the client that stays, clientWait.
		deadline := time.Now().Add(clientWait + time.Minute)
		for (len(childPIDs(t)) > 0 || countFDs(t) > fds+boolInt(leave == "stalled")) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if left := childPIDs(t); len(left) > 0 {
			t.Errorf("a client %s: runners left behind: %v", leave, left)
		}
		// The stalled client's connection is its own to close; the
		// server's end of it must have been.
		if got := countFDs(t); got > fds+boolInt(leave == "stalled") {
			t.Errorf("a client %s: %d descriptors open, %d before", leave, got, fds)
		}
		// The stalled client stays connected while the next client runs.
		defer nc.Close()
	}
	out.Reset()
	if _, err := RunRemote(t.Context(), addr, hello, serverConfig(t, dir, &out)); err != nil || !strings.Contains(out.String(), "Hello") {
		t.Errorf("after the clients that left: %v %q", err, out.String())
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestServerKeyHoldsInterpretFirst: InterpretFirst is part of the spec a
// runner is made with (it decides whether the runner interprets while it
// compiles), so a run asking for it is not handed a runner made without
// it, nor the other way round.
func TestServerKeyHoldsInterpretFirst(t *testing.T) {
	dir := t.TempDir()
	hello := testwasm.Example(t, "hello")
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 1, Spare: 1})
	defer s.Shutdown(t.Context())
	var out strings.Builder
	if _, err := s.Run(t.Context(), hello, serverConfig(t, dir, &out)); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, s, 1)
	cfg := serverConfig(t, dir, &out)
	cfg.InterpretFirst = true
	if _, err := s.Run(t.Context(), hello, cfg); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().WarmRuns; got != 0 {
		t.Errorf("a run with InterpretFirst was handed a runner made without it (%d warm runs)", got)
	}
}
