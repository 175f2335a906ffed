package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// AdminSecretsPath is the administration's stored resources: GET lists
// them (sizes and times, never values), PUT AdminSecretsPath+PATH stores
// the request's body at PATH, DELETE removes it.
const AdminSecretsPath = "/admin/secrets"

// adminErr is an administration refusal on the wire: the error's text,
// and which of the store's errors it is, so that a client's errors match
// what the store returns in its own process.
type adminErr struct {
	Error string `json:"error"`
	Kind  string `json:"kind"`
}

var adminKinds = map[string]error{"path": ErrResourcePath, "value": ErrResourceValue, "not-found": ErrNoResource}

func adminRefusal(w http.ResponseWriter, err error) {
	code, kind := http.StatusInternalServerError, ""
	for k, sentinel := range adminKinds {
		if errors.Is(err, sentinel) {
			kind, code = k, http.StatusBadRequest
			if k == "not-found" {
				code = http.StatusNotFound
			}
		}
	}
	writeJSON(w, code, adminErr{Error: err.Error(), Kind: kind})
}

// adminRoutes are the administration's routes beside the audit trail.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+AdminSecretsPath, func(w http.ResponseWriter, r *http.Request) {
		list, err := s.Resources()
		if err != nil {
			adminRefusal(w, err)
			return
		}
		if list == nil {
			list = []ResourceInfo{}
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("PUT "+AdminSecretsPath+"/{path...}", func(w http.ResponseWriter, r *http.Request) {
		value, err := io.ReadAll(io.LimitReader(r.Body, MaxResourceBytes+1))
		defer clear(value)
		if err != nil {
			adminRefusal(w, fmt.Errorf("reading the value: %w", err))
			return
		}
		if err := s.PutResource(r.PathValue("path"), value); err != nil {
			adminRefusal(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
	mux.HandleFunc("DELETE "+AdminSecretsPath+"/{path...}", func(w http.ResponseWriter, r *http.Request) {
		if err := s.RemoveResource(r.PathValue("path")); err != nil {
			adminRefusal(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct{}{})
	})
}

// Admin is a client of the administration a serving broker answers on
// its socket (ServeAdmin): what the database holds, read and changed
// through the broker that holds it.
type Admin struct {
	path string
	http *http.Client
}

// DialAdmin is the administration on the socket at path. Its calls wrap
// ErrNoAdmin when no broker answers there (no socket, or one a killed
// broker left), so the caller may open the database itself.
func DialAdmin(path string) *Admin {
	return &Admin{path: path, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}}
}

// do sends a request and decodes a 200's JSON answer into out; a refusal
// comes back as the store's error it was.
func (a *Admin) do(ctx context.Context, method, path string, body []byte, out any) error {
	if _, err := os.Lstat(a.path); err != nil {
		return fmt.Errorf("%w: %v", ErrNoAdmin, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://broker"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w: %v", ErrNoAdmin, err)
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e adminErr
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			return fmt.Errorf("%w: %s %s: %s", ErrUnavailable, method, path, resp.Status)
		}
		if sentinel, ok := adminKinds[e.Kind]; ok {
			return &adminError{msg: e.Error, kind: sentinel}
		}
		return fmt.Errorf("%w: %s", ErrUnavailable, e.Error)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrProtocol, path, err)
	}
	return nil
}

// adminError is a store's refusal as the serving broker said it.
type adminError struct {
	msg  string
	kind error
}

func (e *adminError) Error() string { return e.msg }
func (e *adminError) Unwrap() error { return e.kind }

// Audit is the serving broker's audit trail (as Server.Audit).
func (a *Admin) Audit(ctx context.Context) ([]AuditRecord, error) {
	var records []AuditRecord
	if err := a.do(ctx, http.MethodGet, AdminPath, nil, &records); err != nil {
		return nil, err
	}
	return records, nil
}

// Resources lists the serving broker's stored resources (as
// Server.Resources).
func (a *Admin) Resources(ctx context.Context) ([]ResourceInfo, error) {
	var list []ResourceInfo
	if err := a.do(ctx, http.MethodGet, AdminSecretsPath, nil, &list); err != nil {
		return nil, err
	}
	return list, nil
}

// escapePath escapes each part of a resource path for the request's URL
// (a part the store refuses is still the store's to refuse).
func escapePath(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// PutResource stores value at path through the serving broker (as
// Server.PutResource): the value goes over the socket, never in a
// command line.
func (a *Admin) PutResource(ctx context.Context, path string, value []byte) error {
	return a.do(ctx, http.MethodPut, AdminSecretsPath+"/"+escapePath(path), value, &struct{}{})
}

// RemoveResource removes the resource at path through the serving
// broker (as Server.RemoveResource).
func (a *Admin) RemoveResource(ctx context.Context, path string) error {
	return a.do(ctx, http.MethodDelete, AdminSecretsPath+"/"+escapePath(path), nil, &struct{}{})
}
