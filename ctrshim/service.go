// Package ctrshim is containerd's runtime shim v2 for Ampoule
// (io.containerd.ampoule.v1): the task API over ttrpc, each container's
// bundle run through an ampoule.Server (warm runners, as 'launch serve'
// keeps them; one shim serves a containerd namespace) or ampoule.Run, so
// that a container or a Kubernetes pod runs under the same measurement,
// gate, limits, seccomp and encrypted log as 'launch run'.
//
// A container's root filesystem, as containerd's snapshotter unpacks an
// image 'launch image build' wrote, is a bundle directory (ampoule.toml and
// the module); the shim mounts it where the OCI bundle says and runs it.
// What the run shows the host goes where a container's output goes: under
// debug the workload's stdout and stderr; under staging and production the
// encrypted log on stdout (in its text form, which CRI's log file keeps
// whole) and the static error line on stderr, with the
// error class as the exit status. The profile, the backend and the
// simulator's key come from the container's OCI annotations (Annotation*),
// never from the image, and are measured or reported like any run's. A
// pod's sandbox (pause) container runs no wasm: it is a task that stays
// running until it is killed.
package ctrshim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/events"
	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/containerd/api/types/task"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/logging"
)

// OCI annotations the shim reads from a container's config.json. For
// Kubernetes, containerd's CRI passes a pod's annotations on only where the
// runtime's pod_annotations lists them (deploy/kubernetes).
const (
	// AnnotationProfile is the profile: debug, staging or production;
	// without it, production.
	AnnotationProfile = "run.ampoule.profile"
	// AnnotationBackend is the TEE backend (auto, sim, snp, tdx); without
	// it, the profile's default.
	AnnotationBackend = "run.ampoule.backend"
	// AnnotationSimKey is the simulator's key file; without it, the
	// default of the shim's user.
	AnnotationSimKey = "run.ampoule.sim-key"
	// annotationContainerType is CRI's: "sandbox" for a pod's pause container.
	annotationContainerType = "io.kubernetes.cri.container-type"
	// DefaultProfile is the profile of a container that names none.
	DefaultProfile = "production"
)

// notImplemented is what every task call the shim does not serve answers.
func notImplemented(call string) error {
	return status.Errorf(codes.Unimplemented, "ampoule shim: %s is not implemented: a wasm workload has no %s", call, map[string]string{
		"Pause": "freezer", "Resume": "freezer", "Checkpoint": "checkpoint", "Exec": "second process",
		"ResizePty": "terminal", "Update": "resources to update", "Stats": "cgroup statistics"}[call])
}

// Service is the task service: every container of one shim. It is safe
// for concurrent use.
type Service struct {
	namespace string
	events    *Publisher
	// shutdown is called once no task remains and containerd asks the
	// shim to go.
	shutdown func()

	// server, if not nil, runs the containers, with its warm runners;
	// else each container's run starts its own runner (ampoule.Run).
	server *ampoule.Server
	// linger is how long the shim stays once it holds no task, for its
	// warm runners to serve the next container; 0 ends it at once.
	linger time.Duration

	// settings, if not nil, are the shim's, which its start resolved: a
	// Create whose runtime options give others is refused.
	settings *Settings

	// lockStarts takes the node's lock of shim starts and withdraw, under
	// it, makes the shim unreachable to them (endpoint); both do nothing
	// for a Service no start finds.
	lockStarts func() (func(), error)
	withdraw   func()

	mu    sync.Mutex
	tasks map[string]*container
	// reserved are the tasks a start has reserved (Reserve) whose Create
	// has not come yet, each with its expiry: the shim ends with none.
	reserved map[string]*time.Timer
	// reservationTTL is how long a reservation holds the shim without
	// its Create.
	reservationTTL time.Duration
	// idle is the timer that ends a shim holding no task, armed by
	// Shutdown and stopped by Create and Reserve.
	idle *time.Timer
	// gone is set once the shim decided to end: a Create or a Reserve
	// that comes after is refused, for containerd to start a new shim.
	gone bool
}

// NewService is a task service that publishes its events through pub
// (nil publishes none) and calls shutdown when containerd ends the shim.
// Each container's run starts its own runner.
func NewService(namespace string, pub *Publisher, shutdown func()) *Service {
	return &Service{namespace: namespace, events: pub, shutdown: shutdown, tasks: map[string]*container{}, reserved: map[string]*time.Timer{},
		reservationTTL: reservationTTL, lockStarts: func() (func(), error) { return func() {}, nil }, withdraw: func() {}}
}

// NewWarmService is NewService whose containers run through srv, taking
// its warm runners, and which stays linger after its last task went
// before it calls shutdown, so that the next container finds the runners
// still warm.
func NewWarmService(namespace string, pub *Publisher, shutdown func(), srv *ampoule.Server, linger time.Duration) *Service {
	s := NewService(namespace, pub, shutdown)
	s.server, s.linger = srv, linger
	return s
}

var _ taskapi.TaskService = (*Service)(nil)

// container is one task: its bundle, its stdio and its run.
type container struct {
	id, bundle, rootfs    string
	stdin, stdout, stderr string
	sandbox               bool
	mounted               bool
	annotations           map[string]string

	mu       sync.Mutex
	status   task.Status
	pid      uint32
	exitCode uint32
	exitedAt time.Time
	cancel   context.CancelFunc
	// killedBy is the signal Kill sent, 0 if none.
	killedBy syscall.Signal
	started  chan struct{} // closed once the workload is about to start or the run ended
	done     chan struct{} // closed when the run ended
	in       io.Closer
}

func (s *Service) get(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.tasks[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "ampoule shim: no task %q", id)
	}
	return c, nil
}

func noExec(execID string) error {
	if execID != "" {
		return status.Errorf(codes.NotFound, "ampoule shim: no exec %q: a wasm workload runs one process", execID)
	}
	return nil
}

// Create prepares the task: reads config.json, mounts the root filesystem.
func (s *Service) Create(ctx context.Context, r *taskapi.CreateTaskRequest) (*taskapi.CreateTaskResponse, error) {
	// The task holds the shim from here, not its reservation; a Create
	// that fails leaves the shim as idle as it was.
	defer s.unreserve(r.ID)
	if r.Terminal {
		return nil, status.Errorf(codes.InvalidArgument, "ampoule shim: a terminal is not supported; run without -t")
	}
	if r.Checkpoint != "" {
		return nil, notImplemented("Checkpoint")
	}
	set, err := ResolveSettings(os.Getenv, r.Options)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ampoule shim: %s: %v; hint: %s", errcode.ShimOptionsInvalid, err, errcode.ShimOptionsInvalid.Hint())
	}
	if s.settings != nil && set != *s.settings {
		// containerd did not hand start the options it hands Create.
		return nil, status.Errorf(codes.FailedPrecondition, "ampoule shim: %s: the runtime options give the settings %s, the shim was started with %s: its start was not handed them", errcode.ShimOptionsInvalid, set, *s.settings)
	}
	spec, err := readSpec(r.Bundle)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "ampoule shim: %v", err)
	}
	c := &container{id: r.ID, bundle: r.Bundle, stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr,
		annotations: spec.Annotations, sandbox: spec.Annotations[annotationContainerType] == "sandbox",
		status: task.Status_CREATED, started: make(chan struct{}), done: make(chan struct{})}
	c.rootfs = spec.Root.Path
	if c.rootfs == "" {
		c.rootfs = "rootfs"
	}
	if !filepath.IsAbs(c.rootfs) {
		c.rootfs = filepath.Join(r.Bundle, c.rootfs)
	}
	s.mu.Lock()
	if s.gone {
		s.mu.Unlock()
		return nil, errEnding()
	}
	if _, dup := s.tasks[r.ID]; dup {
		s.mu.Unlock()
		return nil, status.Errorf(codes.AlreadyExists, "ampoule shim: task %q exists", r.ID)
	}
	s.tasks[r.ID] = c
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	s.mu.Unlock()
	if len(r.Rootfs) > 0 && !c.sandbox {
		if err := mountAll(r.Rootfs, c.rootfs); err != nil {
			s.remove(r.ID)
			return nil, status.Errorf(codes.Internal, "ampoule shim: mounting the root filesystem: %v", err)
		}
		c.mounted = true
	}
	c.pid = uint32(os.Getpid())
	s.events.Publish(ctx, "/tasks/create", &events.TaskCreate{ContainerID: r.ID, Bundle: r.Bundle, Rootfs: r.Rootfs,
		IO: &events.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr}, Pid: c.pid})
	return &taskapi.CreateTaskResponse{Pid: c.pid}, nil
}

func (s *Service) remove(id string) {
	s.mu.Lock()
	delete(s.tasks, id)
	s.mu.Unlock()
}

// spec is what the shim reads of an OCI runtime spec.
type spec struct {
	Root struct {
		Path string `json:"path"`
	} `json:"root"`
	Annotations map[string]string `json:"annotations"`
}

// maxSpecBytes bounds config.json.
const maxSpecBytes = 4 << 20

func readSpec(bundle string) (*spec, error) {
	f, err := os.Open(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSpecBytes+1))
	if err != nil {
		return nil, err
	}
	s, err := parseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s/config.json: %v", bundle, err)
	}
	return s, nil
}

// parseSpec reads what the shim uses of an OCI runtime spec: the root's
// path and the annotations. A root path with a NUL is refused.
func parseSpec(data []byte) (*spec, error) {
	if len(data) > maxSpecBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxSpecBytes)
	}
	var s spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	if strings.ContainsRune(s.Root.Path, 0) {
		return nil, fmt.Errorf("root.path holds a NUL")
	}
	return &s, nil
}

// Start starts the task's run and returns once the workload is about to
// run its first instruction (measured, attested) or the run has ended.
func (s *Service) Start(ctx context.Context, r *taskapi.StartRequest) (*taskapi.StartResponse, error) {
	if err := noExec(r.ExecID); err != nil {
		return nil, err
	}
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.status != task.Status_CREATED {
		c.mu.Unlock()
		return nil, status.Errorf(codes.FailedPrecondition, "ampoule shim: task %q is %s, not created", r.ID, c.status)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel, c.status = cancel, task.Status_RUNNING
	c.mu.Unlock()
	if c.sandbox {
		close(c.started)
		go func() { <-runCtx.Done(); s.exited(c, 0) }()
	} else {
		go s.run(runCtx, c)
	}
	select {
	case <-c.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	pid := c.pid
	c.mu.Unlock()
	s.events.Publish(ctx, "/tasks/start", &events.TaskStart{ContainerID: r.ID, Pid: pid})
	return &taskapi.StartResponse{Pid: pid}, nil
}

// run runs the container's bundle through ampoule.Run.
func (s *Service) run(ctx context.Context, c *container) {
	var startOnce sync.Once
	markStarted := func() { startOnce.Do(func() { close(c.started) }) }
	defer markStarted()
	stdout, stderr, stdin := openIO(c.stdout), openIO(c.stderr), openIn(c.stdin)
	defer stdout.Close()
	defer stderr.Close()
	if stdin != nil {
		c.mu.Lock()
		c.in = stdin.fifo
		c.mu.Unlock()
		defer stdin.Close()
	}
	profile := c.annotations[AnnotationProfile]
	if profile == "" {
		profile = DefaultProfile
	}
	cfg := ampoule.Config{Profile: profile, Backend: c.annotations[AnnotationBackend], SimKey: c.annotations[AnnotationSimKey],
		Stdout: stdout, Stderr: stderr, Warnings: stderr,
		// The log's text form: containerd's CRI splits a container's
		// stdout into lines (and drops a '\r' before each '\n'), so
		// binary frames would not survive its log file.
		LogSink: func() (io.WriteCloser, error) { return logging.NewTextWriter(stdout), nil },
		BeforeStart: func(pid int) {
			c.mu.Lock()
			c.pid = uint32(pid)
			c.mu.Unlock()
			markStarted()
		}}
	if stdin != nil {
		cfg.Stdin = stdin.runner
	}

	var res ampoule.Result
	var err error
	if s.server != nil {
		res, err = s.server.Run(ctx, c.rootfs, cfg)
	} else {
		res, err = ampoule.Run(ctx, c.rootfs, cfg)
	}
	code := res.ExitCode
	if err != nil {
		if res.Profile.StaticErrors {
			io.WriteString(stderr, errcode.Static(err, res.Ref))
		} else {
			io.WriteString(stderr, errcode.Detailed(err))
		}
		code = uint32(errcode.From(err).Code.Class().ExitStatus())
	}
	s.exited(c, code)
}

// exited records the task's end and publishes /tasks/exit. A killed task
// exits with 128 + the signal, whatever its run said.
func (s *Service) exited(c *container, code uint32) {
	c.mu.Lock()
	if c.status == task.Status_STOPPED {
		c.mu.Unlock()
		return
	}
	if c.killedBy != 0 {
		code = 128 + uint32(c.killedBy)
	}
	c.status, c.exitCode, c.exitedAt = task.Status_STOPPED, code, time.Now()
	pid, at := c.pid, c.exitedAt
	close(c.done)
	c.mu.Unlock()
	s.events.Publish(context.Background(), "/tasks/exit", &events.TaskExit{ContainerID: c.id, ID: c.id, Pid: pid,
		ExitStatus: code, ExitedAt: timestamppb.New(at)})
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// openIO opens a stdio FIFO containerd made, for writing: read-write, so
// that the open does not wait for a reader. An empty path discards.
func openIO(path string) io.WriteCloser {
	if path == "" {
		return nopCloser{io.Discard}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nopCloser{io.Discard}
	}
	return f
}

// stdin is a container's stdin: the FIFO containerd made, copied into a
// pipe whose reading end the runner gets.
type stdin struct {
	fifo   *os.File
	runner *os.File // the pipe's reading end, the runner's stdin
	w      *os.File // the pipe's writing end, the copy's
}

// openIn opens the stdin FIFO containerd made without waiting for a
// writer (O_NONBLOCK) and copies what it reads into a pipe whose reading
// end is the workload's stdin. A FIFO no writer has opened yet reads as
// end of file; the copy takes that for "not yet" and waits in the poller
// for the writer (ctr's, CRI's, an attach's) instead, so a workload that
// reads stdin before containerd connects reads what containerd then
// writes, and end of file only once a writer has come and closed (or
// CloseIO). The copy never blocks a thread: closing the FIFO ends it, so
// a kill never waits for stdin. A container started without stdin (ctr
// run -d, CRI's stdin: false) reads end of file; so does one whose FIFO
// cannot be opened.
func openIn(path string) *stdin {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		f.Close()
		return nil
	}
	s := &stdin{fifo: f, runner: r, w: w}
	go s.copy()
	return s
}

// copy copies the FIFO into the pipe until end of file (a writer came and
// went), an error, or the FIFO's close.
func (s *stdin) copy() {
	defer s.w.Close()
	rc, err := s.fifo.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			if rerr == unix.EAGAIN || rerr == unix.EINTR {
				return false
			}
			// 0 with no writer yet: wait for one.
			return n != 0 || rerr != nil || writerLeft(int(fd))
		})
		if err != nil || rerr != nil || n == 0 {
			return
		}
		if _, err := s.w.Write(buf[:n]); err != nil {
			return
		}
	}
}

// writerLeft reports whether the FIFO read by fd has had a writer that
// closed it: Linux raises POLLHUP on a FIFO's reader only once a writer
// has come and gone, never for one not yet opened.
func writerLeft(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(p, 0)
	return err != nil || (n > 0 && p[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0)
}

// Close ends the copy and closes both ends of the pipe.
func (s *stdin) Close() error {
	s.fifo.Close()
	s.w.Close()
	return s.runner.Close()
}

// Kill stops the task at once, whatever the signal: the run's runner is
// killed, even while the workload waits inside a host call.
func (s *Service) Kill(ctx context.Context, r *taskapi.KillRequest) (*emptypb.Empty, error) {
	if err := noExec(r.ExecID); err != nil {
		return nil, err
	}
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	switch c.status {
	case task.Status_CREATED:
		c.mu.Unlock()
		s.exited(c, 128+r.Signal)
		return &emptypb.Empty{}, nil
	case task.Status_STOPPED:
		c.mu.Unlock()
		return nil, status.Errorf(codes.NotFound, "ampoule shim: task %q has already exited", r.ID)
	}
	if c.killedBy == 0 {
		c.killedBy = syscall.Signal(r.Signal)
	}
	cancel := c.cancel
	c.mu.Unlock()
	cancel()
	return &emptypb.Empty{}, nil
}

// Wait returns once the task has exited.
func (s *Service) Wait(ctx context.Context, r *taskapi.WaitRequest) (*taskapi.WaitResponse, error) {
	if err := noExec(r.ExecID); err != nil {
		return nil, err
	}
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return &taskapi.WaitResponse{ExitStatus: c.exitCode, ExitedAt: timestamppb.New(c.exitedAt)}, nil
}

// State reports the task.
func (s *Service) State(ctx context.Context, r *taskapi.StateRequest) (*taskapi.StateResponse, error) {
	if err := noExec(r.ExecID); err != nil {
		return nil, err
	}
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &taskapi.StateResponse{ID: c.id, Bundle: c.bundle, Pid: c.pid, Status: c.status,
		Stdin: c.stdin, Stdout: c.stdout, Stderr: c.stderr, ExitStatus: c.exitCode}
	if !c.exitedAt.IsZero() {
		st.ExitedAt = timestamppb.New(c.exitedAt)
	}
	return st, nil
}

// Delete removes an exited (or never started) task and unmounts its root.
func (s *Service) Delete(ctx context.Context, r *taskapi.DeleteRequest) (*taskapi.DeleteResponse, error) {
	if err := noExec(r.ExecID); err != nil {
		return nil, err
	}
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.status == task.Status_RUNNING {
		c.mu.Unlock()
		return nil, status.Errorf(codes.FailedPrecondition, "ampoule shim: task %q is running; kill it first", r.ID)
	}
	if c.status == task.Status_CREATED {
		c.status, c.exitedAt = task.Status_STOPPED, time.Now()
		close(c.done)
	}
	pid, code, at := c.pid, c.exitCode, c.exitedAt
	c.mu.Unlock()
	if c.mounted {
		if err := unmountAll(c.rootfs); err != nil {
			return nil, status.Errorf(codes.Internal, "ampoule shim: unmounting %s: %v", c.rootfs, err)
		}
	}
	s.remove(r.ID)
	s.events.Publish(ctx, "/tasks/delete", &events.TaskDelete{ContainerID: c.id, ID: c.id, Pid: pid, ExitStatus: code, ExitedAt: timestamppb.New(at)})
	return &taskapi.DeleteResponse{Pid: pid, ExitStatus: code, ExitedAt: timestamppb.New(at)}, nil
}

// Pids lists the task's process: its runner once it started.
func (s *Service) Pids(ctx context.Context, r *taskapi.PidsRequest) (*taskapi.PidsResponse, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status != task.Status_RUNNING {
		return &taskapi.PidsResponse{}, nil
	}
	return &taskapi.PidsResponse{Processes: []*task.ProcessInfo{{Pid: c.pid}}}, nil
}

// CloseIO closes the task's stdin.
func (s *Service) CloseIO(ctx context.Context, r *taskapi.CloseIORequest) (*emptypb.Empty, error) {
	if err := noExec(r.ExecID); err != nil {
		return nil, err
	}
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	in := c.in
	c.mu.Unlock()
	if in != nil && r.Stdin {
		in.Close()
	}
	return &emptypb.Empty{}, nil
}

// Connect reports the shim's and the task's pids.
func (s *Service) Connect(ctx context.Context, r *taskapi.ConnectRequest) (*taskapi.ConnectResponse, error) {
	resp := &taskapi.ConnectResponse{ShimPid: uint32(os.Getpid()), Version: "ampoule.v1"}
	if c, err := s.get(r.ID); err == nil {
		c.mu.Lock()
		resp.TaskPid = c.pid
		c.mu.Unlock()
	}
	return resp, nil
}

// Reserve holds the shim for container id, whose Create a start of the
// shim has promised: the shim does not end before that Create comes, or
// reservationTTL has passed without it. An ending shim refuses
// (Unavailable), and the start then starts a new one.
func (s *Service) Reserve(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gone {
		return errEnding()
	}
	if t := s.reserved[id]; t != nil {
		t.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(s.reservationTTL, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.reserved[id] == t {
			delete(s.reserved, id)
			s.idleLocked()
		}
	})
	s.reserved[id] = t
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
	return nil
}

// unreserve ends id's reservation, its Create having come.
func (s *Service) unreserve(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.reserved[id]; t != nil {
		t.Stop()
		delete(s.reserved, id)
		s.idleLocked()
	}
}

// Shutdown ends the shim once it holds no task and no reservation (or at
// once with Now): after its linger, if it holds none for that long.
func (s *Service) Shutdown(ctx context.Context, r *taskapi.ShutdownRequest) (*emptypb.Empty, error) {
	if r.Now {
		s.end(func() bool { return true })
		return &emptypb.Empty{}, nil
	}
	s.mu.Lock()
	s.idleLocked()
	s.mu.Unlock()
	return &emptypb.Empty{}, nil
}

// idleLocked arms the linger of a shim that holds no task and no
// reservation; the caller holds s.mu.
func (s *Service) idleLocked() {
	if s.shutdown == nil || s.gone || s.idle != nil || len(s.tasks) > 0 || len(s.reserved) > 0 {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(max(s.linger, 0), func() {
		// A Create or a Reserve since stopped or replaced it.
		s.end(func() bool { return s.idle == t && len(s.tasks) == 0 && len(s.reserved) == 0 })
	})
	s.idle = t
}

// end ends the shim if still holds (checked under s.mu): under the node's
// lock of starts, it first makes itself unreachable to them, so that no
// start finds a shim that has decided to end.
func (s *Service) end(still func() bool) {
	unlock, err := s.lockStarts()
	if err != nil {
		// Without the lock, ending could strand a start's task: stay.
		fmt.Fprintf(os.Stderr, "containerd-shim-ampoule-v1: error: not ending: %v\n", err)
		return
	}
	defer unlock()
	s.mu.Lock()
	if s.gone || s.shutdown == nil || !still() {
		s.mu.Unlock()
		return
	}
	s.gone = true
	s.mu.Unlock()
	s.withdraw()
	s.shutdown()
}

// The calls a wasm workload has nothing to answer with.

func (s *Service) Pause(context.Context, *taskapi.PauseRequest) (*emptypb.Empty, error) {
	return nil, notImplemented("Pause")
}
func (s *Service) Resume(context.Context, *taskapi.ResumeRequest) (*emptypb.Empty, error) {
	return nil, notImplemented("Resume")
}
func (s *Service) Checkpoint(context.Context, *taskapi.CheckpointTaskRequest) (*emptypb.Empty, error) {
	return nil, notImplemented("Checkpoint")
}
func (s *Service) Exec(context.Context, *taskapi.ExecProcessRequest) (*emptypb.Empty, error) {
	return nil, notImplemented("Exec")
}
func (s *Service) ResizePty(context.Context, *taskapi.ResizePtyRequest) (*emptypb.Empty, error) {
	return nil, notImplemented("ResizePty")
}
func (s *Service) Update(context.Context, *taskapi.UpdateTaskRequest) (*emptypb.Empty, error) {
	return nil, notImplemented("Update")
}
func (s *Service) Stats(context.Context, *taskapi.StatsRequest) (*taskapi.StatsResponse, error) {
	return nil, notImplemented("Stats")
}
