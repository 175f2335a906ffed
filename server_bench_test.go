package ampoule

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// BenchmarkServerRun is one run of hello under debug through a Server over
// its unix socket, handed a warm runner that has compiled: the client's
// connection, the hand-off, the instantiation and the run. The pool is
// refilled between runs, outside the timer, so that each run measures a
// request and not its predecessor's replacement (which back-to-back runs
// share two cores with). It reports the request's two halves: to-start-ms,
// from the dial to the server's "started" (the bundle read and measured,
// the runner taken, the run's evidence made), and start-to-end-ms, from
// there to the result (the guest's instantiation, its run, the runner's
// report).
func BenchmarkServerRun(b *testing.B) {
	dir := b.TempDir()
	hello := testwasm.Example(b, "hello")
	s := NewServer(ServerConfig{Runner: testRunner(b), MaxRuns: 1})
	addr := startWire(b, s)
	cfg := serverConfig(b, dir, io.Discard)
	var started time.Time
	cfg.BeforeStart = func(int) { started = time.Now() }
	for range 2 {
		if _, err := RunRemote(context.Background(), addr, hello, cfg); err != nil {
			b.Fatal(err)
		}
	}
	var toStart, toEnd time.Duration
	warm := s.Stats().WarmRuns
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		waitIdle(b, s, 2)
		b.StartTimer()
		t0 := time.Now()
		if _, err := RunRemote(context.Background(), addr, hello, cfg); err != nil {
			b.Fatal(err)
		}
		end := time.Now()
		toStart += started.Sub(t0)
		toEnd += end.Sub(started)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(toStart.Microseconds())/1000/n, "to-start-ms")
	b.ReportMetric(float64(toEnd.Microseconds())/1000/n, "start-to-end-ms")
	if s.Stats().WarmRuns-warm < int64(b.N) {
		b.Fatalf("%d of %d runs were handed a warm runner", s.Stats().WarmRuns-warm, b.N)
	}
}
