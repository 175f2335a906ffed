package ampoule

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwarm"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/tee"
)

// serverConfig is a debug run on the simulator with its own key, and the
// test binary's shared compile cache (serverCache): these tests are about
// the server, not the cache, so each example compiles once.
func serverConfig(t testing.TB, dir string, out io.Writer) Config {
	return Config{Profile: "debug", Backend: tee.KindSim, SimKey: filepath.Join(dir, "sim.key"),
		CacheDir: serverCache(t), Stdout: out, Warnings: io.Discard}
}

var serverWarmOnce sync.Once

// serverCache is testwasm.CacheDir with hello and crash compiled into it
// once per test binary, by warm runners whose compile bound is minutes:
// their first compile on a loaded machine takes 10-30 s, past the 10 s
// their wall time allows (TestServerConcurrentClients' eight clients all
// failed with E4002 compiling at once), and no server test is about
// compile time. A warm-up that fails is reported by the test that asked
// first; later runs then compile for themselves.
func serverCache(t testing.TB) string {
	t.Helper()
	dir := testwasm.CacheDir(t)
	serverWarmOnce.Do(func() {
		testwarm.Compile(t, testRunner(t), dir, "hello", "crash")
	})
	return dir
}

// waitIdle waits until s holds n idle runners, all compiled.
func waitIdle(t testing.TB, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for st := s.Stats(); st.Idle != n || st.Ready != n; st = s.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d idle runners, not %d", s.Stats().Idle, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A server's run is Run's: the same output and result; after it, one
// runner for the bundle waits, compiled, and the next run takes it, with
// its own ref and arguments of its own key.
func TestServerRunsWarm(t *testing.T) {
	dir := t.TempDir()
	hello := testwasm.Example(t, "hello")
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 2, Spare: 1})
	defer s.Shutdown(context.Background())
	var direct bytes.Buffer
	dcfg := serverConfig(t, dir, &direct)
	dcfg.Runner = testRunner(t)
	want, err := Run(context.Background(), hello, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	for i := range 3 {
		var out bytes.Buffer
		res, err := s.Run(context.Background(), hello, serverConfig(t, dir, &out))
		if err != nil || res.ExitCode != 0 || out.String() != direct.String() {
			t.Fatalf("run %d: %+v %v %q, want %q", i, res, err, out.String(), direct.String())
		}
		if res.Measurement != want.Measurement || res.Backend != want.Backend || res.Insecure != want.Insecure {
			t.Errorf("run %d: %+v, want %+v", i, res, want)
		}
		if refs[res.Ref] {
			t.Errorf("run %d: ref %s again", i, res.Ref)
		}
		refs[res.Ref] = true
		waitIdle(t, s, 1)
	}
	if got := s.Stats().WarmRuns; got != 2 {
		t.Errorf("%d runs were handed a warm runner, want 2", got)
	}
	// Other arguments are another key: a runner of its own.
	var out bytes.Buffer
	cfg := serverConfig(t, dir, &out)
	cfg.Args = []string{"Ada"}
	if _, err := s.Run(context.Background(), hello, cfg); err != nil || !strings.Contains(out.String(), "Hello, tenant Ada,") {
		t.Fatalf("%v %q", err, out.String())
	}
	if got := s.Stats().WarmRuns; got != 2 {
		t.Errorf("a run of another key was handed a warm runner (%d)", got)
	}
	waitIdle(t, s, 2)
	// A refusal is Run's.
	cfg = serverConfig(t, dir, nil)
	cfg.Profile = "staging"
	cfg.Args = []string{"x"}
	_, err = s.Run(context.Background(), hello, cfg)
	if errcode.From(err).Code != errcode.HostOverrideRefused {
		t.Errorf("staging with arguments: %v", err)
	}
	if _, err := s.Run(context.Background(), filepath.Join(dir, "missing"), serverConfig(t, dir, nil)); errcode.From(err).Code != errcode.BundleNotFound {
		t.Errorf("a missing bundle: %v", err)
	}
}

// A runner killed with SIGKILL mid-run fails its own run alone; the
// server goes on, and the killed runner's replacement serves the next run.
func TestServerRunnerKilled(t *testing.T) {
	dir := t.TempDir()
	crash := testwasm.Example(t, "crash")
	hello := testwasm.Example(t, "hello")
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 2, Spare: 1})
	defer s.Shutdown(context.Background())
	spin := serverConfig(t, dir, nil)
	spin.Args = []string{"sleep"}
	// Warm both keys first, so the kill hits a warm runner.
	if _, err := s.Run(context.Background(), hello, serverConfig(t, dir, nil)); err != nil {
		t.Fatal(err)
	}
	// Ended by its wall time, once compiled.
	if _, err := s.Run(context.Background(), crash, spin); errcode.From(err).Code != errcode.WallTimeLimit {
		t.Fatalf("sleep: %v", err)
	}
	waitIdle(t, s, 2)
	pids := make(chan int, 1)
	spin.BeforeStart = func(pid int) { pids <- pid }
	var wg sync.WaitGroup
	var spinErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, spinErr = s.Run(context.Background(), crash, spin)
	}()
	pid := <-pids
	var out bytes.Buffer
	if res, err := s.Run(context.Background(), hello, serverConfig(t, dir, &out)); err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), "Hello") {
		t.Errorf("the other run: %+v %v %q", res, err, out.String())
	}
	time.Sleep(100 * time.Millisecond)
	syscall.Kill(pid, syscall.SIGKILL)
	wg.Wait()
	if errcode.From(spinErr).Code != errcode.Internal {
		t.Errorf("the killed run: %v, want E5001", spinErr)
	}
	out.Reset()
	if res, err := s.Run(context.Background(), hello, serverConfig(t, dir, &out)); err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), "Hello") {
		t.Errorf("a run after the kill: %+v %v %q", res, err, out.String())
	}
	if s.Stats().WarmRuns < 3 {
		t.Errorf("only %d runs were handed a warm runner", s.Stats().WarmRuns)
	}
}

// Past MaxRuns going and MaxQueue waiting a run is refused at once with
// E4013 server-busy, a host error; a draining server refuses every new
// run the same way, lets the run going end, and kills its idle runners.
func TestServerBusyAndDrain(t *testing.T) {
	dir := t.TempDir()
	crash := testwasm.Example(t, "crash")
	hello := testwasm.Example(t, "hello")
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 1, MaxQueue: -1, Spare: 1})
	if _, err := s.Run(context.Background(), hello, serverConfig(t, dir, nil)); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, s, 1)
	nap := serverConfig(t, dir, nil)
	nap.Args = []string{"nap", "1500"}
	started := make(chan struct{})
	nap.BeforeStart = func(int) { close(started) }
	var napErr error
	var res Result
	done := make(chan struct{})
	go func() {
		res, napErr = s.Run(context.Background(), crash, nap)
		close(done)
	}()
	<-started
	_, err := s.Run(context.Background(), hello, serverConfig(t, dir, nil))
	if e := errcode.From(err); e.Code != errcode.ServerBusy || !errcode.IsHost(err) {
		t.Fatalf("a run past the bounds: %v", err)
	}
	if _, err := s.Run(context.Background(), hello, Config{Profile: "staging", Ref: "0123456789abcdef"}); errcode.From(err).Code != errcode.ServerBusy {
		t.Errorf("a staging run past the bounds: %v", err)
	}
	idle := s.idlePIDs()
	drained := make(chan error)
	go func() { drained <- s.Shutdown(context.Background()) }()
	time.Sleep(50 * time.Millisecond)
	if _, err := s.Run(context.Background(), hello, serverConfig(t, dir, nil)); errcode.From(err).Code != errcode.ServerBusy {
		t.Errorf("a run while draining: %v", err)
	}
	select {
	case <-drained:
		t.Fatal("the drain did not wait for the run going")
	default:
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	<-done
	if napErr != nil || res.ExitCode != 0 {
		t.Errorf("the run going while draining: %+v %v", res, napErr)
	}
	if s.Stats().Idle != 0 {
		t.Errorf("%d idle runners after the drain", s.Stats().Idle)
	}
	for _, pid := range idle {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("idle runner %d alive after the drain", pid)
		}
	}
}

// idlePIDs lists the idle runners' pids.
func (s *Server) idlePIDs() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pids []int
	for _, ws := range s.idle {
		for _, w := range ws {
			pids = append(pids, w.w.PID())
		}
	}
	return pids
}

// Idle runners are kept within the budget: past it the least recently
// warmed is killed; a budget below one runner keeps none.
func TestServerWarmBudget(t *testing.T) {
	dir := t.TempDir()
	hello := testwasm.Example(t, "hello")
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 2, Spare: 1})
	defer s.Shutdown(context.Background())
	if _, err := s.Run(context.Background(), hello, serverConfig(t, dir, nil)); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, s, 1)
	first := s.idlePIDs()[0]
	one := s.Stats().IdleRSS
	if one <= 0 {
		t.Fatalf("an idle runner of %d bytes", one)
	}
	s.mu.Lock()
	s.cfg.WarmBudget = one + one/2
	s.mu.Unlock()
	cfg := serverConfig(t, dir, nil)
	cfg.Args = []string{"Ada"}
	if _, err := s.Run(context.Background(), hello, cfg); err != nil {
		t.Fatal(err)
	}
	// The second key's runner came in; the first, older, went.
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := s.idlePIDs()
		if len(pids) == 1 && pids[0] != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle runners %v (the first was %d)", pids, first)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s.Stats().IdleRSS > s.cfg.WarmBudget {
		t.Errorf("%d bytes idle, past the budget of %d", s.Stats().IdleRSS, s.cfg.WarmBudget)
	}
	if err := syscall.Kill(first, 0); err == nil {
		time.Sleep(200 * time.Millisecond)
		if syscall.Kill(first, 0) == nil {
			t.Errorf("the evicted runner %d is alive", first)
		}
	}
	s.mu.Lock()
	s.cfg.WarmBudget = 1
	s.mu.Unlock()
	if _, err := s.Run(context.Background(), hello, serverConfig(t, dir, nil)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	waitIdle(t, s, 0)
}

// startWire serves s on a fresh unix socket.
func startWire(t testing.TB, s *Server) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Serve(ctx, l)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Shutdown(context.Background())
	})
	return "unix:" + sock
}

// Eight clients at once over the socket, each with its output, ref and
// exit status, none failing.
func TestServerConcurrentClients(t *testing.T) {
	dir := t.TempDir()
	hello := testwasm.Example(t, "hello")
	crash := testwasm.Example(t, "crash")
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 2, MaxQueue: 8})
	addr := startWire(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			cfg := serverConfig(t, dir, &out)
			bundle := hello
			if i%2 == 1 {
				bundle, cfg.Args = crash, []string{"exit", fmt.Sprint(i)}
			}
			res, err := RunRemote(context.Background(), addr, bundle, cfg)
			switch {
			case err != nil:
				errs <- fmt.Errorf("client %d: %w", i, err)
			case i%2 == 0 && (res.ExitCode != 0 || !strings.Contains(out.String(), "Hello, tenant,")):
				errs <- fmt.Errorf("client %d: %+v %q", i, res, out.String())
			case i%2 == 1 && res.ExitCode != uint32(i):
				errs <- fmt.Errorf("client %d: exit %d", i, res.ExitCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Three hundred sequential runs over the socket leave the server's
// descriptors where they were after the warm-up, and its resident memory
// grown by at most 30% of the warm-up's (or 16 MiB, a garbage-collected
// heap's noise, if more): the same bound per run as a thousand runs within
// twice the warm-up's, in a third of the time (short: a hundred runs,
// within twice).
func TestServerNoGrowth(t *testing.T) {
	dir := t.TempDir()
	hello := testwasm.Example(t, "hello")
	// One idle runner, whose descriptors are the same before and after.
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 1, Spare: 1})
	addr := startWire(t, s)
	run := func() {
		var out bytes.Buffer
		res, err := RunRemote(context.Background(), addr, hello, serverConfig(t, dir, &out))
		if err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), "Hello") {
			t.Fatalf("%+v %v %q", res, err, out.String())
		}
	}
	for range 20 {
		run()
	}
	waitIdle(t, s, 1)
	fds, rss := countFDs(t), residentBytes(os.Getpid())
	n, grow := 300, max(rss*3/10, 16<<20)
	if testing.Short() {
		n, grow = 100, rss
	}
	for range n {
		run()
	}
	waitIdle(t, s, 1)
	if got := countFDs(t); got > fds {
		t.Errorf("%d descriptors open after %d runs, %d after the warm-up", got, n, fds)
	}
	if got := residentBytes(os.Getpid()); got > rss+grow {
		t.Errorf("resident memory %d bytes after %d runs, %d after the warm-up (at most %d more)", got, n, rss, grow)
	}
	if w := s.Stats().WarmRuns; w < int64(n) {
		t.Errorf("only %d of %d runs were handed a warm runner", w, n+20)
	}
}

func countFDs(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// An interrupted client stops its run on the server, which unwinds it as
// Run would (E2003), and the server serves on; a run stopped while it
// waits for a slot is hidden as Run hides its errors.
func TestServerClientInterrupted(t *testing.T) {
	dir := t.TempDir()
	crash := testwasm.Example(t, "crash")
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 1})
	addr := startWire(t, s)
	cfg := serverConfig(t, dir, nil)
	cfg.Args = []string{"sleep"}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.BeforeStart = func(int) { time.AfterFunc(200*time.Millisecond, cancel) }
	start := time.Now()
	_, err := RunRemote(ctx, addr, crash, cfg)
	if errcode.From(err).Code != errcode.Interrupted || !strings.Contains(err.Error(), "the client was interrupted") {
		t.Errorf("an interrupted client: %v, want the server's E2003", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the interrupted run took %v to end; its wall time is 5 s", d)
	}
	var out bytes.Buffer
	if _, err := RunRemote(context.Background(), addr, testwasm.Example(t, "hello"), serverConfig(t, dir, &out)); err != nil || !strings.Contains(out.String(), "Hello") {
		t.Errorf("after the interruption: %v %q", err, out.String())
	}
	waiting, stop := context.WithCancel(context.Background())
	s.slots <- struct{}{} // every slot taken: the next run waits
	time.AfterFunc(100*time.Millisecond, stop)
	_, err = s.Run(waiting, crash, Config{Profile: "staging", Ref: "0123456789abcdef"})
	<-s.slots
	if err == nil || err.Error() != "E2003 interrupted (ref 0123456789abcdef)" {
		t.Errorf("a staging run stopped while it waited: %v", err)
	}
}

// zeros is an endless stdin.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// The client's stdin reaches the workload whole, pulled a chunk at a
// time; a stdin the workload does not read never holds up the client's
// interruption.
func TestServerStdin(t *testing.T) {
	dir := t.TempDir()
	crash := testwasm.Example(t, "crash")
	s := NewServer(ServerConfig{Runner: testRunner(t), MaxRuns: 1})
	addr := startWire(t, s)
	input := bytes.Repeat([]byte("0123456789abcdef"), 32<<10) // 512 KiB, within the output limit
	for i := range 2 {
		var out bytes.Buffer
		cfg := serverConfig(t, dir, &out)
		cfg.Args, cfg.Stdin = []string{"echo"}, bytes.NewReader(input)
		if _, err := RunRemote(context.Background(), addr, crash, cfg); err != nil || !strings.HasPrefix(out.String(), string(input)) || !strings.HasSuffix(out.String(), "echo: 524288 bytes, <nil>\n") {
			t.Fatalf("run %d: %v, %d bytes out", i, err, out.Len())
		}
	}
	cfg := serverConfig(t, dir, nil)
	cfg.Args, cfg.Stdin = []string{"sleep"}, zeros{}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.BeforeStart = func(int) { time.AfterFunc(300*time.Millisecond, cancel) }
	start := time.Now()
	if _, err := RunRemote(ctx, addr, crash, cfg); errcode.From(err).Code != errcode.Interrupted || !strings.Contains(err.Error(), "the client was interrupted") {
		t.Errorf("an interrupted client with an endless stdin: %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("the interruption took %v", d)
	}
}
