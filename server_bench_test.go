package ampoule

import (
	"context"
	"io"
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// BenchmarkServerRun is one run of hello under debug through a Server over
// its unix socket, handed a warm runner: the client's connection, the
// hand-off, the instantiation and the run.
func BenchmarkServerRun(b *testing.B) {
	dir := b.TempDir()
	hello := testwasm.Example(b, "hello")
	s := NewServer(ServerConfig{Runner: testRunner(b), MaxRuns: 1})
	addr := startWire(b, s)
	cfg := serverConfig(b, dir, io.Discard)
	for range 2 {
		if _, err := RunRemote(context.Background(), addr, hello, cfg); err != nil {
			b.Fatal(err)
		}
	}
	waitIdle(b, s, 2)
	b.ResetTimer()
	for b.Loop() {
		if _, err := RunRemote(context.Background(), addr, hello, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s.Stats().WarmRuns == 0 {
		b.Fatal("no run was handed a warm runner")
	}
}
