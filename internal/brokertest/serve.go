package brokertest

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/broker"
)

// FreeAddr is a loopback address no one listens on now, for a broker a
// manifest must name before it starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ResourceDecisions are the audit records of a broker's decisions on
// resources, without those of the attestations before them, of which
// there must be attestations (a run attests once, for all its
// resources).
func ResourceDecisions(t testing.TB, records []broker.AuditRecord, attestations int) []broker.AuditRecord {
	t.Helper()
	var out []broker.AuditRecord
	n := 0
	for _, r := range records {
		if len(r.Asked) == 1 && r.Asked[0] == broker.TokenAsked {
			n++
			continue
		}
		out = append(out, r)
	}
	if n != attestations {
		t.Errorf("%d attestations in the audit trail, want %d: %+v", n, attestations, records)
	}
	return out
}

// Buffer is a bytes.Buffer safe for a program writing while a test
// reads.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Main is a program's entry point, as launch's run is.
type Main func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

// Served is a program (a broker) serving in the test's process.
type Served struct {
	Out, Err *Buffer
	cancel   context.CancelFunc
	done     chan int
	once     sync.Once
	code     int
}

// Serve runs main with args (launch broker serve ...) until Stop or the
// end of the test, once its stdout says "listening on".
func Serve(t testing.TB, main Main, args ...string) *Served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Served{Out: &Buffer{}, Err: &Buffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- main(ctx, args, strings.NewReader(""), s.Out, s.Err) }()
	t.Cleanup(func() { s.Stop() })
	s.WaitFor(t, s.Out, "listening on")
	return s
}

// WaitFor waits (10 s at most) until b holds text.
func (s *Served) WaitFor(t testing.TB, b *Buffer, text string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(b.String(), text); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in %q (stderr %q)", text, b.String(), s.Err.String())
		}
	}
}

// Stop ends the program and returns its exit status.
func (s *Served) Stop() int {
	s.once.Do(func() {
		s.cancel()
		s.code = <-s.done
	})
	return s.code
}
