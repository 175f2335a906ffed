package broker

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/attest"
)

// TestListenAndServe: plain HTTP on loopback answers a challenge, with its
// administration socket made and removed once serving stops; a SIGHUP
// reloads the policy, and a reload that fails is told and keeps serving;
// plain HTTP beyond loopback, a certificate without its key and one that
// does not load are ListenErrors, before anything is served.
func TestListenAndServe(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "broker.db"), testPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events := make(chan Event, 16)
	reloads := 0
	o := ServeOptions{Addr: "127.0.0.1:0", Admin: filepath.Join(dir, "admin.sock"),
		Notify: func(ev Event) { events <- ev },
		Reload: func() (*attest.Policy, error) {
			if reloads++; reloads > 1 {
				return nil, errors.New("no policy")
			}
			return testPolicy(t), nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, o) }()
	next := func(want EventKind) Event {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Kind == want {
					return ev
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no event %d", want)
			}
		}
	}
	url := next(Listening).URL
	next(AdminServing)
	resp, err := http.Post(url+ChallengePath, "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("challenge: %v %v", resp, err)
	}
	resp.Body.Close()
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	next(Reloaded)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	if ev := next(ReloadFailed); ev.Err == nil {
		t.Error("a failed reload carries no error")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("stopped with %v", err)
	}
	if _, err := os.Lstat(o.Admin); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the administration socket outlived serving: %v", err)
	}
	for _, bad := range []ServeOptions{
		{Addr: "0.0.0.0:0"},
		{Addr: "127.0.0.1:0", TLSCert: filepath.Join(dir, "cert.pem")},
		{Addr: "127.0.0.1:0", TLSCert: filepath.Join(dir, "cert.pem"), TLSKey: filepath.Join(dir, "key.pem")},
		{Addr: "127.0.0.1:99999"},
	} {
		var le *ListenError
		if err := s.ListenAndServe(context.Background(), bad); !errors.As(err, &le) {
			t.Errorf("%+v: %v, want a ListenError", bad, err)
		}
	}
	if err := s.ListenAndServe(context.Background(), ServeOptions{Addr: "0.0.0.0:0"}); !errors.Is(err, ErrPlainNotLoopback) {
		t.Errorf("plain HTTP beyond loopback: %v", err)
	}
}

// TestReloadDropsNoRequest: while four clients send challenges back to back
// over one connection each, twenty SIGHUPs each reload the policy, and
// every request sent is answered 200; a reload restarts neither the
// listener nor a connection.
func TestReloadDropsNoRequest(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "broker.db"), testPolicy(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events := make(chan Event, 64)
	o := ServeOptions{Addr: "127.0.0.1:0",
		Notify: func(ev Event) { events <- ev },
		Reload: func() (*attest.Policy, error) { return testPolicy(t), nil }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, o) }()
	var url string
	for url == "" {
		select {
		case ev := <-events:
			if ev.Kind == Listening {
				url = ev.URL
			}
		case <-time.After(10 * time.Second):
			t.Fatal("not listening")
		}
	}
	stop := make(chan struct{})
	// answered counts requests begun: each reload waits for one more, so
	// that requests overlap every reload however fast reloads are.
	var answered atomic.Int64
	type tally struct{ sent, failed int }
	results := make(chan tally, 4)
	for c := 0; c < 4; c++ {
		go func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			var n tally
			for {
				select {
				case <-stop:
					results <- n
					return
				default:
				}
				n.sent++
				answered.Add(1)
				resp, err := client.Post(url+ChallengePath, "application/json", nil)
				if err != nil {
					n.failed++
					continue
				}
				if resp.StatusCode != http.StatusOK {
					n.failed++
				}
				resp.Body.Close()
			}
		}()
	}
	reloaded := 0
	for i := 0; i < 20; i++ {
		for seen, deadline := answered.Load(), time.Now().Add(10*time.Second); answered.Load() <= seen+1; {
			if time.Now().After(deadline) {
				t.Fatalf("no request went out before reload %d", i)
			}
			time.Sleep(time.Millisecond)
		}
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
	wait:
		for {
			select {
			case ev := <-events:
				if ev.Kind == Reloaded {
					reloaded++
					break wait
				}
				if ev.Kind == ReloadFailed {
					t.Fatalf("reload %d failed: %v", i, ev.Err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("reload %d not told", i)
			}
		}
	}
	close(stop)
	var all tally
	for c := 0; c < 4; c++ {
		n := <-results
		all.sent += n.sent
		all.failed += n.failed
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("stopped with %v", err)
	}
	t.Logf("%d requests during 20 reloads", all.sent)
	if reloaded != 20 {
		t.Errorf("%d reloads told, want 20", reloaded)
	}
	if all.sent < 20 || all.failed != 0 {
		t.Errorf("%d requests sent during the reloads, %d not answered 200", all.sent, all.failed)
	}
}
