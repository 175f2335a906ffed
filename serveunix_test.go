package ampoule

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestServeUnix: ServeUnix says where it listens, runs what RunRemote
// sends it (the committed tiny module), and once its context ends drains
// and removes its socket; a path holding a file that is not a socket is
// refused as the host's own error, and left alone.
func TestServeUnix(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	s := NewServer(ServerConfig{MaxRuns: 1})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.ServeUnix(ctx, "unix:"+sock, func(path string) { ready <- path }) }()
	if got := <-ready; got != sock {
		t.Errorf("ready with %q, want %q", got, sock)
	}
	var out bytes.Buffer
	res, err := RunRemote(context.Background(), "unix:"+sock, filepath.Join("testdata", "tiny"), serverConfig(t, dir, &out))
	if err != nil || res.ExitCode != 0 || !strings.Contains(out.String(), "hello from a tiny module") {
		t.Errorf("a run over the socket: %+v %v, output %q", res, err, out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeUnix after its context ended: %v", err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket is still there: %v", err)
	}

	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = NewServer(ServerConfig{}).ServeUnix(context.Background(), "unix:"+plain, nil)
	if errcode.From(err).Code != errcode.ServerSocketRefused || !errcode.IsHost(err) {
		t.Errorf("a plain file as the socket: %v", err)
	}
	if data, err := os.ReadFile(plain); err != nil || string(data) != "x" {
		t.Errorf("the plain file was touched: %q %v", data, err)
	}
}
