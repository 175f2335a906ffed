package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ampoule-run/ampoule/attest"
)

// Serve serves the broker's protocol on ln until ctx ends, then stops
// within half a second, abandoning requests still open; its HTTP server's
// timeouts bound a slow client (10 s for the headers, 30 s for a request
// and its answer). It returns nil once stopped by ctx, else why serving
// or stopping failed.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("stopping: %w", err)
	}
	return nil
}

// ServeOptions are ListenAndServe's: where it listens, with what
// certificate, where its administration answers, how it reloads its
// policy, and whom it tells what happens.
type ServeOptions struct {
	// Addr is the TCP address to listen on, host:port.
	Addr string
	// TLSCert and TLSKey are PEM files, both or neither; with neither the
	// broker serves plain HTTP, and on a loopback address only.
	TLSCert, TLSKey string
	// Admin is the administration socket's path (AdminSocket); empty:
	// none.
	Admin string
	// Reload, if set, is called on each SIGHUP for the policy to serve
	// from then on; a policy it cannot give, or one SetPolicy refuses,
	// leaves the one served.
	Reload func() (*attest.Policy, error)
	// Notify, if set, is told what happens as it happens.
	Notify func(Event)
}

// EventKind is what an Event says.
type EventKind int

// What ListenAndServe tells ServeOptions.Notify.
const (
	// Listening: the broker answers at URL.
	Listening EventKind = iota
	// PlainHTTP: the broker serves plain HTTP at URL, metadata in the clear.
	PlainHTTP
	// AdminServing: the administration answers on the socket at URL.
	AdminServing
	// AdminFailed: the administration socket could not be made (Err); the
	// broker serves without it.
	AdminFailed
	// Reloaded: a SIGHUP's policy is served from now on.
	Reloaded
	// ReloadFailed: a SIGHUP's policy was refused (Err); the one served
	// stays.
	ReloadFailed
)

// Event is one thing that happened while serving.
type Event struct {
	Kind EventKind
	// URL is where the broker or its administration answers.
	URL string
	Err error
}

// ListenError is a refusal of ServeOptions' own values (an address it
// cannot listen on, a certificate that does not load, plain HTTP beyond
// loopback), before anything is served: Flag names the option, as
// "listen" or "tls".
type ListenError struct {
	Flag string
	Err  error
}

func (e *ListenError) Error() string { return e.Flag + ": " + e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// ErrPlainNotLoopback is why plain HTTP beyond loopback is refused.
var ErrPlainNotLoopback = errors.New("plain HTTP is served on loopback only")

// ListenAndServe serves the broker at o.Addr, and its administration on
// o.Admin, until ctx ends, as Serve does; SIGHUP reloads the policy
// through o.Reload between two requests, none dropped. A refusal of o's
// values is a *ListenError.
func (s *Server) ListenAndServe(ctx context.Context, o ServeOptions) error {
	notify := o.Notify
	if notify == nil {
		notify = func(Event) {}
	}
	ln, plain, err := listen(o)
	if err != nil {
		return err
	}
	// SIGHUP is taken before the broker says it listens: a reload asked
	// for as soon as it is serving must not be lost, nor end the process
	// (a signal's default action) before the handler is there.
	if o.Reload != nil {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-hup:
					s.reload(o.Reload, notify)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	scheme := "https"
	if plain {
		scheme = "http"
		notify(Event{Kind: PlainHTTP, URL: "http://" + ln.Addr().String()})
	}
	notify(Event{Kind: Listening, URL: scheme + "://" + ln.Addr().String()})
	if o.Admin != "" {
		if stop, err := s.ServeAdmin(o.Admin); err != nil {
			notify(Event{Kind: AdminFailed, URL: o.Admin, Err: err})
		} else {
			defer stop()
			notify(Event{Kind: AdminServing, URL: o.Admin})
		}
	}
	return s.Serve(ctx, ln)
}

// reload serves the policy load gives from now on, or keeps the one
// served, and says which.
func (s *Server) reload(load func() (*attest.Policy, error), notify func(Event)) {
	pol, err := load()
	if err == nil {
		err = s.SetPolicy(pol)
	}
	if err != nil {
		notify(Event{Kind: ReloadFailed, Err: err})
		return
	}
	notify(Event{Kind: Reloaded})
}

// listen makes o's listener: TLS with o's certificate, or plain HTTP on a
// loopback address only.
func listen(o ServeOptions) (ln net.Listener, plain bool, err error) {
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, false, &ListenError{"tls", errors.New("a certificate and its key go together")}
	}
	var tlsConfig *tls.Config
	if o.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, false, &ListenError{"tls", err}
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err = net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, false, &ListenError{"listen", err}
	}
	if tlsConfig != nil {
		return tls.NewListener(ln, tlsConfig), false, nil
	}
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		ln.Close()
		return nil, false, &ListenError{"listen", ErrPlainNotLoopback}
	}
	return ln, true, nil
}
