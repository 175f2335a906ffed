package broker

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// TestServe: a broker served on a real loopback listener answers a
// challenge, and stops, returning nil, once its context ends; a listener
// already closed is an error, not a hang.
func TestServe(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "broker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Post("http://"+ln.Addr().String()+ChallengePath, "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("challenge: %v %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stopped with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop")
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closed.Close()
	if err := s.Serve(context.Background(), closed); err == nil {
		t.Error("a closed listener served")
	}
}
