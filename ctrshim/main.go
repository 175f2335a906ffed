package ctrshim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/ttrpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
)

// SocketDir is where the shims' ttrpc sockets are made: short paths, for
// the 108 bytes a unix socket's path may have.
const SocketDir = "/run/ampoule/s"

// Main is the shim's command line, as containerd runs it: "start" starts
// the shim's server (or finds the one serving the container's pod), with
// the settings of the runtime options containerd writes on stdin
// (ResolveSettings), and prints its plain unix:// address, which
// containerd 1.6 and 2.x both take;
// "delete" cleans up after a shim that died and prints a DeleteResponse;
// with neither, the process serves the task API on the listener it
// inherited. It returns the exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("containerd-shim-ampoule-v1", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namespace := fs.String("namespace", "", "containerd namespace")
	address := fs.String("address", "", "containerd's grpc address")
	fs.String("publish-binary", "", "containerd's binary, for publishing events (unused: events go over TTRPC_ADDRESS)")
	id := fs.String("id", "", "the container's id")
	bundle := fs.String("bundle", "", "the OCI bundle directory (default: the working directory)")
	fs.Bool("debug", false, "containerd's debug flag (unused)")
	socket := fs.String("socket", "", "serve: the socket path of the inherited listener")
	owner := fs.String("owner", "", "serve: the token start wrote into the socket's owner file")
	def := DefaultSettings()
	warm := fs.Bool("warm", def.Warm, "serve: warm runners, one shim for the namespace (start sets it: Settings)")
	linger := fs.Duration("linger", def.Linger, "serve: how long the shim stays once it holds no task (start sets it: Settings)")
	fs.Bool("v", false, "print the version")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.Lookup("v").Value.String() == "true" {
		fmt.Fprintln(stdout, "containerd-shim-ampoule-v1 (task API v2, ttrpc)")
		return 0
	}
	if *namespace == "" {
		*namespace = os.Getenv("NAMESPACE")
	}
	if *bundle == "" {
		*bundle, _ = os.Getwd()
	}
	var err error
	switch fs.Arg(0) {
	case "start":
		err = start(*namespace, *address, *id, *bundle, stdin, stdout)
	case "delete":
		err = deleteAction(*bundle, stdout)
	case "":
		err = serve(ctx, *namespace, *id, *socket, *owner, Settings{Warm: *warm, Linger: *linger})
	default:
		err = fmt.Errorf("unknown action %q: want start, delete or none", fs.Arg(0))
	}
	if err != nil {
		var ce *errcode.Error
		if errors.As(err, &ce) {
			// containerd shows a failed start's output in its error.
			fmt.Fprintf(stderr, "containerd-shim-ampoule-v1: error: %s: %v\ncontainerd-shim-ampoule-v1: hint: %s\n", ce.Code, err, ce.Hint())
		} else {
			fmt.Fprintf(stderr, "containerd-shim-ampoule-v1: error: %v\n", err)
		}
		return 1
	}
	return 0
}

// Environment the shim reads, containerd's own passed on to its shims;
// the runtime's options in containerd's config take precedence
// (ResolveSettings).
const (
	// EnvWarm set to "0" runs each container with a runner of its own
	// and one shim per pod (or container), as before warm runners; else
	// one shim per containerd namespace serves every container through an
	// ampoule.Server and its warm runners (Settings.Warm).
	EnvWarm = "AMPOULE_SHIM_WARM"
	// EnvLinger is how long a warm shim stays once it holds no task, as
	// a Go duration (Settings.Linger).
	EnvLinger = "AMPOULE_SHIM_LINGER"
	// DefaultLinger keeps a warm shim and its runners a minute after the
	// node's last container of the namespace went.
	DefaultLinger = time.Minute
	// EnvLog is the file a warm shim's own errors are appended to
	// (DefaultLog if unset). A shim per pod writes them where containerd
	// reads a shim's log, its bundle's log FIFO; a warm shim outlives the
	// bundle it was started for, so it has a file of the node's.
	EnvLog = "AMPOULE_SHIM_LOG"
	// DefaultLog is the warm shims' log, beside their sockets.
	DefaultLog = "/run/ampoule/shim.log"
)

// maxRuns is the warm shim's bound on runs at once, far past any node's
// pods.
const maxRuns = 1 << 16

// socketPath is the shim's socket for the container. With warm runners,
// one shim per containerd and namespace, so that a container finds the
// runners the ones before it warmed; without, one per pod (CRI's sandbox
// id), else one per container.
// Shims of other settings (another runtime of containerd's config) have
// sockets of their own.
func socketPath(address, namespace, id, bundle string, set Settings) string {
	group := id
	if set.Warm {
		group = "\x00node"
	} else if s, err := readSpec(bundle); err == nil && s.Annotations["io.kubernetes.cri.sandbox-id"] != "" {
		group = s.Annotations["io.kubernetes.cri.sandbox-id"]
	}
	sum := sha256.Sum256([]byte(address + "\x00" + namespace + "\x00" + group + "\x00" + set.String()))
	return filepath.Join(SocketDir, hex.EncodeToString(sum[:16]))
}

// start prints the address of the shim that is to serve the container:
// under the node's lock of starts (endpoint.go), the one listening for it,
// if that one takes the container's reservation, else a new one, started
// detached on a listener it inherits, holding the reservation from its
// start.
//
// The settings are the runtime options containerd hands over on stdin
// over its environment's (ResolveSettings); the new shim is given them.
func start(namespace, address, id, bundle string, stdin io.Reader, stdout io.Writer) error {
	set, err := ResolveSettings(os.Getenv, readStartOptions(stdin))
	if err != nil {
		return err
	}
	path := socketPath(address, namespace, id, bundle, set)
	if err := os.MkdirAll(SocketDir, 0o700); err != nil {
		return err
	}
	unlock, err := lockDir(SocketDir)
	if err != nil {
		return err
	}
	defer unlock()
	if reserve(path, id) == nil {
		return printAddress(stdout, bundle, path)
	}
	// No shim there, or one that is ending or does not answer: the
	// socket is replaced, and its owner file names the new shim, so that
	// one that ends later leaves this one's socket (endpoint).
	token, err := newOwnerToken()
	if err != nil {
		return err
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	if err := claim(path, token); err != nil {
		l.Close()
		return err
	}
	ul := l.(*net.UnixListener)
	// The server inherits the socket: closing this copy must not unlink it.
	ul.SetUnlinkOnClose(false)
	f, err := ul.File()
	ul.Close()
	if err != nil {
		return err
	}
	defer f.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-namespace", namespace, "-address", address, "-id", id, "-socket", path, "-owner", token,
		"-warm="+strconv.FormatBool(set.Warm), "-linger="+set.Linger.String())
	cmd.Dir, cmd.Env, cmd.ExtraFiles = bundle, os.Environ(), []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if set.Warm {
		// A shared shim outlives the bundle it was started for: its
		// directory is not kept busy, and its errors do not go to that
		// bundle's log FIFO, which nobody reads once the container went
		// (a full FIFO would block the shim).
		cmd.Dir = "/"
		if lf := openShimLog(); lf != nil {
			defer lf.Close()
			cmd.Stderr = lf
		}
	} else if lf, err := os.OpenFile(filepath.Join(bundle, "log"), os.O_RDWR, 0); err == nil {
		// The server's own errors go where containerd reads a shim's
		// log: the bundle's "log" FIFO, opened read-write so that the
		// open never waits.
		defer lf.Close()
		cmd.Stderr = lf
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	// The server outlives this process: containerd, a subreaper, reaps it.
	cmd.Process.Release()
	return printAddress(stdout, bundle, path)
}

// openShimLog opens the warm shims' log for appending (EnvLog), or
// returns nil if it cannot: the shim then runs with its errors discarded,
// as it would with no log at all; no run depends on it.
func openShimLog() *os.File {
	path := os.Getenv(EnvLog)
	if path == "" {
		path = DefaultLog
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil
	}
	// O_NONBLOCK: a FIFO put in the log's place, which nobody reads,
	// fails the open (ENXIO) rather than holding containerd's start; and
	// the shim writes only to a regular file, never to a device.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil
	}
	return f
}

func printAddress(stdout io.Writer, bundle, path string) error {
	addr := "unix://" + path
	// containerd 1.6 reads the address back from here when it restarts.
	os.WriteFile(filepath.Join(bundle, "address"), []byte(addr), 0o600)
	_, err := fmt.Fprint(stdout, addr)
	return err
}

// serve serves the task API on fd 3 until Shutdown; the start that
// started it reserved container id, and wrote owner into the socket's
// owner file.
func serve(ctx context.Context, namespace, id, socket, owner string, set Settings) error {
	f := os.NewFile(3, "listener")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("no listener on fd 3 (containerd starts the shim with 'start'): %w", err)
	}
	defer l.Close()
	// The socket is removed as the shim ends, under the node's lock of
	// starts, unless another shim has since made its own at the path.
	var ep *endpoint
	if socket != "" {
		ep = newEndpoint(filepath.Dir(socket), socket, owner)
		defer func() {
			if unlock, err := ep.lock(); err == nil {
				ep.withdraw()
				unlock()
			}
		}()
	}
	var pub *Publisher
	if a := os.Getenv("TTRPC_ADDRESS"); a != "" {
		if pub, err = NewPublisher(a, namespace); err != nil {
			return fmt.Errorf("dialing containerd's events at %s: %w", a, err)
		}
		defer pub.Close()
	}
	srv, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var svc *Service
	if set.Warm {
		// The shim is its own runners' executable (RunnerMain). It
		// bounds no container's run: the kubelet and containerd decide
		// what runs on the node, and a container is never refused for a
		// server's queue.
		runs := ampoule.NewServer(ampoule.ServerConfig{MaxRuns: maxRuns, MaxQueue: -1})
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			runs.Shutdown(sctx)
			scancel()
		}()
		svc = NewWarmService(namespace, pub, cancel, runs, set.Linger)
	} else {
		svc = NewService(namespace, pub, cancel)
	}
	svc.settings = &set
	if ep != nil {
		svc.lockStarts, svc.withdraw = ep.lock, ep.withdraw
	}
	if id != "" {
		svc.Reserve(id)
	}
	taskapi.RegisterTaskService(srv, svc)
	registerReserve(srv, svc)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, l) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		// The Service has withdrawn the socket: no start finds the shim.
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		srv.Shutdown(sctx)
		scancel()
	}
	if err == ttrpc.ErrServerClosed {
		err = nil
	}
	return err
}

// deleteAction cleans up the bundle of a shim that died: its root
// filesystem unmounted. It prints the DeleteResponse containerd expects.
func deleteAction(bundle string, stdout io.Writer) error {
	rootfs := filepath.Join(bundle, "rootfs")
	if s, err := readSpec(bundle); err == nil && s.Root.Path != "" {
		rootfs = s.Root.Path
		if !filepath.IsAbs(rootfs) {
			rootfs = filepath.Join(bundle, rootfs)
		}
	}
	if err := unmountAll(rootfs); err != nil {
		return err
	}
	b, err := proto.Marshal(&taskapi.DeleteResponse{ExitedAt: timestamppb.Now(), ExitStatus: 128 + uint32(syscall.SIGKILL)})
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}

// dialUnix dials a unix socket given as a path or a unix:// address.
func dialUnix(address string) (net.Conn, error) {
	return net.DialTimeout("unix", strings.TrimPrefix(address, "unix://"), 5*time.Second)
}
