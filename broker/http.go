package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// logged is a response that remembers its status and the decision its
// handler took, for the request's line.
type logged struct {
	http.ResponseWriter
	status   int
	decision string
}

func (l *logged) WriteHeader(code int) {
	if l.status == 0 {
		l.status = code
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *logged) Write(b []byte) (int, error) {
	if l.status == 0 {
		l.status = http.StatusOK
	}
	return l.ResponseWriter.Write(b)
}

// decide records the decision a request ended in (a verdict, or why none
// was taken) for its line in the request log.
func decide(w http.ResponseWriter, decision string) {
	if l, ok := w.(*logged); ok {
		l.decision = decision
	}
}

// logRequests wraps h so that every request ends with one line on out:
// time, remote host, method, escaped path, status, decision and duration.
// Nothing of a request's body or headers is written, so no secret, token
// or cookie reaches the line.
func logRequests(h http.Handler, out io.Writer, now func() time.Time) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		l := &logged{ResponseWriter: w}
		h.ServeHTTP(l, r)
		if l.status == 0 {
			l.status = http.StatusOK
		}
		decision := l.decision
		if decision == "" {
			decision = "-"
		}
		mu.Lock()
		fmt.Fprintf(out, "%s %s %s %s %d %s %s\n", start.UTC().Format(time.RFC3339Nano), remoteHost(r), r.Method, r.URL.EscapedPath(), l.status, decision, now().Sub(start).Round(time.Microsecond))
		mu.Unlock()
	})
}

// Index is what GET / answers: the service, its version and its
// endpoints.
type Index struct {
	Service   string   `json:"service"`
	Version   string   `json:"version"`
	Key       string   `json:"key"`
	Endpoints []string `json:"endpoints"`
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Index{Service: "ampoule key broker", Version: s.Version, Key: fmt.Sprintf("%x", s.PublicKey()), Endpoints: s.endpoints()})
}

// AdminSocket is the unix socket a broker serving the database at db
// answers its administration on: the audit trail and the stored
// resources, read and changed while the broker holds the database.
func AdminSocket(db string) string { return db + ".sock" }

// AdminPath is the administration's audit trail path.
const AdminPath = "/admin/audit"

// ServeAdmin answers the administration (GET /admin/audit: the audit
// trail as JSON; the stored resources at AdminSecretsPath) on a unix socket at path, readable and writable by the
// broker's user only, until the returned stop is called; stop removes the
// socket before it returns, so a broker that ends leaves none behind. A
// socket left at path by a broker that was killed is replaced: the caller
// holds the database, so no other broker serves it.
func (s *Server) ServeAdmin(path string) (stop func(), err error) {
	if len(path) > 107 {
		return nil, fmt.Errorf("the administration socket %s is longer than a unix socket's path may be", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("the administration socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("the administration socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AdminPath, func(w http.ResponseWriter, r *http.Request) {
		records, err := s.Audit()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, errorBody{err.Error()})
			return
		}
		if records == nil {
			records = []AuditRecord{}
		}
		writeJSON(w, http.StatusOK, records)
	})
	s.adminRoutes(mux)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	var once sync.Once
	return func() {
		once.Do(func() {
			// The listener is closed here, not by Serve's goroutine,
			// which may not have started: closing it unlinks the socket.
			ln.Close()
			hs.Close()
		})
	}, nil
}

// ErrNoAdmin: no broker answers on the administration socket.
var ErrNoAdmin = errors.New("no broker answers on the administration socket")

// ReadAuditSocket reads the audit trail from the broker serving on the
// administration socket at path (DialAdmin(path).Audit).
func ReadAuditSocket(ctx context.Context, path string) ([]AuditRecord, error) {
	return DialAdmin(path).Audit(ctx)
}
