package vm

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// TestListenPorts: what a client (QEMU) writes on a port's socket reaches
// the port's writer while the connection is open, before wait; wait
// returns once the client has gone, and also when it never came (QEMU
// ended before connecting).
func TestListenPorts(t *testing.T) {
	dir := t.TempDir()
	sockets := map[string]string{PortOut: filepath.Join(dir, "out.sock"), PortLog: filepath.Join(dir, "log.sock")}
	var out testwasm.SyncBuffer
	s, err := listenPorts(sockets, map[string]io.Writer{PortOut: &out})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", sockets[PortOut])
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("first line\n"))
	// It arrives while the connection is open.
	for deadline := time.Now().Add(time.Minute); out.String() != "first line\n"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("before the end: %q", out.String())
		}
	}
	conn.Write([]byte("last line\n"))
	conn.Close()
	s.wait() // the log's socket was never connected to
	if got := out.String(); got != "first line\nlast line\n" {
		t.Errorf("at the end: %q", got)
	}
}
