package ampoule

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/shim/audit"
	"github.com/ampoule-run/ampoule/tee"
)

// The wire between RunRemote and Serve is a stream of frames: a type
// byte, a big-endian uint32 length and that many bytes (at most
// maxFrame). The client sends a request first, then its stdin and its
// answer to a log's opening; the server sends the run's output, warnings,
// log and events, and its result last.
const (
	// Client to server.
	frameRequest  = 'q' // JSON wireRequest, first and once
	frameStdin    = 'i' // stdin bytes
	frameStdinEOF = 'I' // stdin ended
	frameLogOpen  = 'k' // JSON wireError: the log sink opened (empty) or not
	frameLogFail  = 'x' // JSON wireError: writing the log failed
	frameCancel   = 'C' // the client was interrupted: stop the run
	// Server to client.
	frameStdout   = 'o'
	frameStderr   = 'e'
	frameWarning  = 'w'
	frameWantIn   = 'S' // the run reads stdin: send one chunk of it
	frameOpenLog  = 'L' // open the log sink
	frameLog      = 'l' // log bytes
	frameCloseLog = 'c' // close the log sink
	frameStarted  = 's' // JSON int: the runner's pid, before the first instruction
	frameResult   = 'r' // JSON wireResult, last
)

// maxFrame bounds one frame's payload.
const maxFrame = 1 << 20

// errFrame: a frame that is not one.
var errFrame = errors.New("malformed frame")

// writeFrame writes one frame.
func writeFrame(w io.Writer, typ byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("%w: %d bytes", errFrame, len(payload))
	}
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(append(hdr[:], payload...)); err != nil {
		return err
	}
	return nil
}

// readFrame reads one frame; a length past maxFrame is errFrame.
func readFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("%w: a length of %d bytes", errFrame, n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("%w: cut short: %w", errFrame, err)
	}
	return hdr[0], payload, nil
}

// wireRequest is a run's Config as it crosses to the server: the parts a
// host may set, paths absolute. The server reads the bundle at Path
// itself; what it measures is what it read.
type wireRequest struct {
	Path        string            `json:"path"`
	Profile     string            `json:"profile"`
	Backend     string            `json:"backend,omitempty"`
	SimKey      string            `json:"sim_key,omitempty"`
	Args        []string          `json:"args,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Dirs        []loader.Mount    `json:"dirs,omitempty"`
	TraceCalls  bool              `json:"trace_calls,omitempty"`
	Audit       bool              `json:"audit,omitempty"`
	CacheDir    string            `json:"cache_dir,omitempty"`
	NoCache     bool              `json:"no_cache,omitempty"`
	Confine     bool              `json:"confine,omitempty"`
	LogLevel    int               `json:"log_level,omitempty"`
	LogJSON     bool              `json:"log_json,omitempty"`
	SealedStore string            `json:"sealed_store,omitempty"`
	Ref         string            `json:"ref,omitempty"`
	Stdin       bool              `json:"stdin,omitempty"`
	Stdout      bool              `json:"stdout,omitempty"`
	Stderr      bool              `json:"stderr,omitempty"`
	LogSink     bool              `json:"log_sink,omitempty"`
}

// wireError is an errcode error as it crosses: already what the host may
// see (Run hid the rest).
type wireError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
	Hint string `json:"hint,omitempty"`
	Host bool   `json:"host,omitempty"`
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	e := errcode.From(err)
	return &wireError{Code: int(e.Code), Msg: e.Error(), Hint: e.Hint(), Host: errcode.IsHost(err)}
}

func (w *wireError) err() error {
	if w == nil {
		return nil
	}
	c := errcode.Code(w.Code)
	if !c.Registered() {
		return errcode.Errorf(errcode.ServerProtocol, "the server sent the unregistered code %d", w.Code)
	}
	e := errcode.Errorf(c, "%s", w.Msg)
	if w.Hint != c.Hint() {
		e = e.WithHint(w.Hint)
	}
	if w.Host {
		e = e.Host()
	}
	return e
}

// wireResult is a Result as it crosses.
type wireResult struct {
	ExitCode    uint32        `json:"exit_code"`
	Ref         string        `json:"ref"`
	Profile     string        `json:"profile"`
	Backend     string        `json:"backend"`
	Insecure    bool          `json:"insecure"`
	Measurement string        `json:"measurement,omitempty"`
	Envelope    *tee.Envelope `json:"envelope,omitempty"`
	Audit       []audit.Count `json:"audit,omitempty"`
	Also        []*wireError  `json:"also,omitempty"`
	Err         *wireError    `json:"err,omitempty"`
}

// decodeRequest reads a request frame's payload.
func decodeRequest(payload []byte) (wireRequest, error) {
	var req wireRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return req, fmt.Errorf("%w: the request: %w", errFrame, err)
	}
	if req.Path == "" || !filepath.IsAbs(req.Path) {
		return req, fmt.Errorf("%w: the request names no absolute bundle path", errFrame)
	}
	for _, d := range req.Dirs {
		if !filepath.IsAbs(d.Host) {
			return req, fmt.Errorf("%w: the mount %s is not an absolute path", errFrame, d.Host)
		}
	}
	return req, nil
}

// decodeResult reads a result frame's payload.
func decodeResult(payload []byte) (wireResult, error) {
	var res wireResult
	if err := json.Unmarshal(payload, &res); err != nil {
		return res, fmt.Errorf("%w: the result: %w", errFrame, err)
	}
	return res, nil
}

// conn is one side's frame writer, safe for several goroutines.
type conn struct {
	mu sync.Mutex
	w  *bufio.Writer
	nc net.Conn
	// takeWithin, if set, bounds how long the other side may leave a
	// frame untaken; past it the send fails, and every send after it
	// (bufio keeps the error): the connection is given up.
	takeWithin time.Duration
}

// clientWait is the server's takeWithin: a client that has taken nothing
// of a frame for this long has stopped reading. Its run's output and
// result then go nowhere, rather than its workload's streams (which the
// runner's exit waits for), its run's slot and its connection being held
// for as long as it stays connected.
const clientWait = 30 * time.Second

func (c *conn) send(typ byte, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.takeWithin > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(c.takeWithin))
	}
	if err := writeFrame(c.w, typ, payload); err != nil {
		return err
	}
	return c.w.Flush()
}

// frameWriter sends what is written to it as frames of one type.
type frameWriter struct {
	c   *conn
	typ byte
	// failed, if set, says why the client could not take more.
	failed func() error
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if f.failed != nil {
		if err := f.failed(); err != nil {
			return 0, err
		}
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), maxFrame)
		if err := f.c.send(f.typ, p[:k]); err != nil {
			return n, err
		}
		n, p = n+k, p[k:]
	}
	return n, nil
}

// requestWait bounds how long a client may take to send its request once
// connected.
const requestWait = 10 * time.Second

// interruptWait is how long an interrupted client waits for the server's
// run to unwind before it leaves.
const interruptWait = 5 * time.Second

// Serve answers RunRemote's requests on l, each run through s.Run, until
// l is closed or ctx is done. It then stops accepting and returns once
// every connection it accepted has had its answer: the runs going end as
// they would have (Shutdown then kills the idle runners). A client that
// goes away stops its run.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			s.serveConn(ctx, nc)
		}()
	}
}

// ServeUnix serves s on the unix socket listen names ("unix:PATH", made
// as ListenUnix makes it) until ctx is done, then drains s (Shutdown) and
// removes the socket. ready, when set, is called with the socket's path
// once it listens. Errors are ListenUnix's, or E1071 server-socket-refused
// when accepting fails; either is the host's own.
func (s *Server) ServeUnix(ctx context.Context, listen string, ready func(path string)) error {
	l, path, err := ListenUnix(listen)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	if ready != nil {
		ready(path)
	}
	err = s.Serve(ctx, l)
	s.Shutdown(context.Background())
	if err != nil {
		return errcode.Errorf(errcode.ServerSocketRefused, "unix:%s: %v", path, err).Host()
	}
	return nil
}

// serveConn runs one client's request.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	defer nc.Close()
	c := &conn{w: bufio.NewWriter(nc), nc: nc, takeWithin: clientWait}
	r := bufio.NewReader(nc)
	nc.SetReadDeadline(time.Now().Add(requestWait))
	typ, payload, err := readFrame(r)
	if err != nil || typ != frameRequest {
		return
	}
	nc.SetReadDeadline(time.Time{})
	req, err := decodeRequest(payload)
	if err != nil {
		data, _ := json.Marshal(wireResult{Err: toWire(errcode.Errorf(errcode.ServerProtocol, "%v", err).Host())})
		c.send(frameResult, data)
		return
	}
	// The run ends when the client goes away, whether or not it was
	// stopped (its connection is the run's only way to the host).
	runCtx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	// Stdin is pulled: the client sends one chunk for each ask, so the
	// frames it sends never wait on the workload's reading, and a cancel
	// always gets through.
	stdin := &askingReader{chunks: make(chan []byte, 2), ask: func() { c.send(frameWantIn, nil) }}
	logOpened := make(chan *wireError, 1)
	var failMu sync.Mutex
	var logFailed error
	go func() {
		defer stdin.end()
		for {
			typ, payload, err := readFrame(r)
			if err != nil {
				cancel(errors.New("the client went away"))
				return
			}
			switch typ {
			case frameStdin:
				if !stdin.put(payload) {
					cancel(errors.New("the client sent stdin it was not asked for"))
					return
				}
			case frameStdinEOF:
				stdin.end()
			case frameLogOpen:
				var we wireError
				if len(payload) > 0 && json.Unmarshal(payload, &we) == nil {
					logOpened <- &we
				} else {
					logOpened <- nil
				}
			case frameCancel:
				cancel(errors.New("the client was interrupted"))
			case frameLogFail:
				var we wireError
				json.Unmarshal(payload, &we)
				failMu.Lock()
				logFailed = we.err()
				if logFailed == nil {
					logFailed = errcode.Errorf(errcode.LogSinkUnavailable, "the client's log sink failed")
				}
				failMu.Unlock()
			default:
				cancel(errors.New("the client sent a malformed frame"))
				return
			}
		}
	}()
	cfg := Config{
		Profile: req.Profile, Backend: req.Backend, SimKey: req.SimKey,
		Args: req.Args, Env: req.Env, Dirs: req.Dirs, TraceCalls: req.TraceCalls, Audit: req.Audit,
		CacheDir: req.CacheDir, NoCache: req.NoCache, Confine: req.Confine,
		LogLevel: hclog.Level(req.LogLevel), LogJSON: req.LogJSON, SealedStore: req.SealedStore, Ref: req.Ref,
		Warnings: &frameWriter{c: c, typ: frameWarning},
		BeforeStart: func(pid int) {
			data, _ := json.Marshal(pid)
			c.send(frameStarted, data)
		},
	}
	if req.Stdout {
		cfg.Stdout = &frameWriter{c: c, typ: frameStdout}
	}
	if req.Stderr {
		cfg.Stderr = &frameWriter{c: c, typ: frameStderr}
	}
	if req.Stdin {
		cfg.Stdin = stdin
	}
	if req.LogSink {
		cfg.LogSink = func() (io.WriteCloser, error) {
			if err := c.send(frameOpenLog, nil); err != nil {
				return nil, errcode.Errorf(errcode.LogSinkUnavailable, "the client: %v", err)
			}
			select {
			case we := <-logOpened:
				if err := we.err(); err != nil {
					return nil, err
				}
			case <-runCtx.Done():
				return nil, errcode.Errorf(errcode.Interrupted, "the run was stopped: %v", context.Cause(runCtx))
			}
			return &logWriter{frameWriter{c: c, typ: frameLog, failed: func() error {
				failMu.Lock()
				defer failMu.Unlock()
				return logFailed
			}}}, nil
		}
	}
	res, err := s.Run(runCtx, req.Path, cfg)
	out := wireResult{ExitCode: res.ExitCode, Ref: res.Ref, Profile: res.Profile.Name, Backend: res.Backend,
		Insecure: res.Insecure, Envelope: res.Envelope, Audit: res.Audit, Err: toWire(err)}
	if res.Measurement != (loader.Measurement{}) {
		out.Measurement = res.Measurement.String()
	}
	for _, e := range res.Also {
		out.Also = append(out.Also, toWire(e))
	}
	data, _ := json.Marshal(out)
	c.send(frameResult, data)
}

// askingReader is the run's stdin as the client sends it: each read that
// finds nothing left asks the client for one chunk and waits for it.
type askingReader struct {
	ask    func()
	chunks chan []byte
	rest   []byte
	mu     sync.Mutex
	asked  int // chunks asked for and not yet come
	ended  bool
}

// put takes a chunk the client sent; one it was not asked for is refused.
func (a *askingReader) put(b []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ended || a.asked == 0 {
		return false
	}
	a.asked--
	a.chunks <- b
	return true
}

// end marks stdin's end (the client's, or the connection's), once.
func (a *askingReader) end() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.ended {
		a.ended = true
		close(a.chunks)
	}
}

func (a *askingReader) Read(p []byte) (int, error) {
	if len(a.rest) == 0 {
		a.mu.Lock()
		if a.ended {
			a.mu.Unlock()
			// What came before the end is still read.
			b, ok := <-a.chunks
			if !ok {
				return 0, io.EOF
			}
			a.rest = b
		} else {
			a.asked++
			a.mu.Unlock()
			a.ask()
			b, ok := <-a.chunks
			if !ok {
				return 0, io.EOF
			}
			a.rest = b
		}
	}
	n := copy(p, a.rest)
	a.rest = a.rest[n:]
	return n, nil
}

// logWriter is the client's log sink as the server writes to it.
type logWriter struct{ frameWriter }

func (l *logWriter) Close() error { return l.c.send(frameCloseLog, nil) }

// RunRemote sends the run of the bundle at path to the Server that Serve
// answers at the unix socket addr ("unix:PATH", or a bare path), and
// returns what it ran with, as Run would: the same Result (its Profile
// the one named, its Measurement the server's), the same error, with the
// workload's output, the warnings, the log and BeforeStart delivered to
// cfg's writers and callbacks as the server's run makes them. Relative
// paths in cfg and path are this process's, made absolute before they go.
// cfg.TEE, cfg.Platform and cfg.Runner are the server's own and are
// refused here; the server's defaults stand for the empty fields.
func RunRemote(ctx context.Context, addr, path string, cfg Config) (Result, error) {
	ref := cfg.Ref
	if ref == "" {
		ref = NewRef()
	}
	res := Result{Ref: ref}
	if p, err := profiles.Get(cfg.Profile); err == nil {
		res.Profile = p
	} else {
		return res, err
	}
	if cfg.TEE != nil || cfg.Platform != nil || cfg.Runner != "" {
		return res, errcode.Errorf(errcode.Usage, "a run sent to a server uses the server's TEE, platform and runner").Host()
	}
	req, err := remoteRequest(path, cfg, ref)
	if err != nil {
		return res, err
	}
	sock := socketPath(addr)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return res, errcode.Errorf(errcode.ServerUnavailable, "--server %s: %v", addr, err).Host()
	}
	defer nc.Close()
	c := &conn{w: bufio.NewWriter(nc), nc: nc}
	// Interrupted, the client asks the server to stop the run and reads
	// on to its end, as launch run unwinds: the log gets its last records.
	stop := context.AfterFunc(ctx, func() { c.send(frameCancel, nil) })
	defer stop()
	data, _ := json.Marshal(req)
	if err := c.send(frameRequest, data); err != nil {
		return res, errcode.Errorf(errcode.ServerUnavailable, "--server %s: %v", addr, err).Host()
	}
	broken := func(err error) (Result, error) {
		if ctx.Err() != nil {
			return res, errcode.Errorf(errcode.Interrupted, "the run was stopped: %v", context.Cause(ctx))
		}
		return res, errcode.Errorf(errcode.ServerProtocol, "--server %s: %v", addr, err).Host()
	}
	// A server that answers no longer once interrupted is left.
	defer context.AfterFunc(ctx, func() {
		time.AfterFunc(interruptWait, func() { nc.Close() })
	})()
	r := bufio.NewReader(nc)
	var asks chan struct{}
	defer func() {
		if asks != nil {
			close(asks)
		}
	}()
	var sink io.WriteCloser
	defer func() {
		if sink != nil {
			sink.Close()
		}
	}()
	for {
		typ, payload, err := readFrame(r)
		if err != nil {
			return broken(err)
		}
		switch typ {
		case frameStdout:
			orDiscard(cfg.Stdout).Write(payload)
		case frameStderr:
			orDiscard(cfg.Stderr).Write(payload)
		case frameWarning:
			cfg.warnings().Write(payload)
		case frameWantIn:
			if asks == nil {
				asks = make(chan struct{}, 16)
				go sendStdin(c, cfg.Stdin, asks)
			}
			select {
			case asks <- struct{}{}:
			default:
				return broken(fmt.Errorf("%w: stdin asked for again before it was sent", errFrame))
			}
		case frameStarted:
			var pid int
			if json.Unmarshal(payload, &pid) != nil {
				return broken(errFrame)
			}
			if cfg.BeforeStart != nil {
				cfg.BeforeStart(pid)
			}
		case frameOpenLog:
			var answer []byte
			if cfg.LogSink == nil {
				answer, _ = json.Marshal(toWire(errcode.Errorf(errcode.LogSinkUnavailable, "no log sink")))
			} else if s, err := cfg.LogSink(); err != nil {
				answer, _ = json.Marshal(toWire(err))
			} else {
				sink = s
			}
			if err := c.send(frameLogOpen, answer); err != nil {
				return broken(err)
			}
		case frameLog:
			if sink == nil {
				return broken(errFrame)
			}
			if _, err := sink.Write(payload); err != nil {
				data, _ := json.Marshal(toWire(errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)))
				c.send(frameLogFail, data)
			}
		case frameCloseLog:
			if sink != nil {
				sink.Close()
				sink = nil
			}
		case frameResult:
			out, err := decodeResult(payload)
			if err != nil {
				return broken(err)
			}
			return out.result(res)
		default:
			return broken(fmt.Errorf("%w: type %q", errFrame, typ))
		}
	}
}

// result is the run's Result and error as the client returns them.
func (w wireResult) result(res Result) (Result, error) {
	if w.Ref != "" {
		res.Ref = w.Ref
	}
	res.ExitCode, res.Backend, res.Insecure, res.Envelope, res.Audit = w.ExitCode, w.Backend, w.Insecure, w.Envelope, w.Audit
	if w.Measurement != "" {
		if b, err := hex.DecodeString(w.Measurement); err == nil && len(b) == len(res.Measurement) {
			copy(res.Measurement[:], b)
		}
	}
	for _, e := range w.Also {
		res.Also = append(res.Also, e.err())
	}
	return res, w.Err.err()
}

// sendStdin sends one chunk of in (nil: empty) for each ask, and its end
// once it has ended.
func sendStdin(c *conn, in io.Reader, asks <-chan struct{}) {
	buf := make([]byte, 32<<10)
	for range asks {
		if in == nil {
			c.send(frameStdinEOF, nil)
			return
		}
		n, err := in.Read(buf)
		for n == 0 && err == nil {
			n, err = in.Read(buf)
		}
		if n > 0 {
			if c.send(frameStdin, buf[:n]) != nil {
				return
			}
			continue
		}
		c.send(frameStdinEOF, nil)
		return
	}
}

// remoteRequest is cfg as it crosses, its paths absolute.
func remoteRequest(path string, cfg Config, ref string) (wireRequest, error) {
	abs := func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		a, err := filepath.Abs(p)
		if err != nil {
			return "", errcode.Errorf(errcode.Usage, "%s: %v", p, err).Host()
		}
		return a, nil
	}
	req := wireRequest{Profile: cfg.Profile, Backend: cfg.Backend, Args: cfg.Args, Env: cfg.Env,
		TraceCalls: cfg.TraceCalls, Audit: cfg.Audit, NoCache: cfg.NoCache, Confine: cfg.Confine,
		LogLevel: int(cfg.LogLevel), LogJSON: cfg.LogJSON, Ref: ref,
		Stdin: cfg.Stdin != nil, Stdout: cfg.Stdout != nil, Stderr: cfg.Stderr != nil, LogSink: cfg.LogSink != nil}
	var err error
	for _, p := range []struct {
		in  string
		out *string
	}{{path, &req.Path}, {cfg.SimKey, &req.SimKey}, {cfg.CacheDir, &req.CacheDir}, {cfg.SealedStore, &req.SealedStore}} {
		if *p.out, err = abs(p.in); err != nil {
			return req, err
		}
	}
	for _, d := range cfg.Dirs {
		if d.Host, err = abs(d.Host); err != nil {
			return req, err
		}
		req.Dirs = append(req.Dirs, d)
	}
	return req, nil
}

// socketPath is the file of a "unix:PATH" address.
func socketPath(addr string) string {
	if len(addr) > 5 && addr[:5] == "unix:" {
		return addr[5:]
	}
	return addr
}
