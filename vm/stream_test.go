package vm

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
)

// TestListenPorts: what a client (QEMU) writes on a port's socket reaches
// the port's writer while the connection is open, before wait; wait
// returns once the client has gone, and also when it never came (QEMU
// ended before connecting).
func TestListenPorts(t *testing.T) {
	dir := t.TempDir()
	sockets := map[string]string{PortOut: filepath.Join(dir, "out.sock"), PortLog: filepath.Join(dir, "log.sock")}
	out := &syncBuffer{got: make(chan struct{}, 16)}
	s, err := listenPorts(sockets, map[string]io.Writer{PortOut: out})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", sockets[PortOut])
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("first line\n"))
	<-out.got // arrives while the connection is open
	if got := out.String(); got != "first line\n" {
		t.Errorf("before the end: %q", got)
	}
	conn.Write([]byte("last line\n"))
	conn.Close()
	s.wait() // the log's socket was never connected to
	if got := out.String(); got != "first line\nlast line\n" {
		t.Errorf("at the end: %q", got)
	}
}

// syncBuffer is a buffer one goroutine writes and another reads, which
// says when a write came.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	got chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	b.got <- struct{}{}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
