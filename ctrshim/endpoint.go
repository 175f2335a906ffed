package ctrshim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// How a start and an ending shim agree. containerd's start of a task may
// reach a shim that is about to end; the task's Create, which comes after
// the start has printed the shim's address, would then find it gone. So
// both sides decide under one lock, the socket directory's:
//
//   - start, under the lock, reserves the task with the shim at the
//     socket (Reserve, below): a shim that accepts the reservation holds
//     it as a task that has not arrived yet and does not end until the
//     task's Create (or the reservation's expiry). A shim that refuses,
//     or none answering, and start replaces the socket with a new shim's,
//     still under the lock.
//   - an ending shim takes the lock, and under it checks that it holds
//     no task and no reservation and, only then, removes its socket: from
//     then on no start can find it.
//
// The reservation is made on the very socket whose address start prints,
// and the shim's check and its removal of the socket happen under the
// lock that every start's check takes, so no sleep or retry is needed.

// reserveService and reserveMethod are the shim's one call beside the
// task API: Reserve(container id), answered by the shim's Service.
const (
	reserveService = "ampoule.shim.v1.Starts"
	reserveMethod  = "Reserve"
)

// reservationTTL is how long a shim holds a reservation whose Create
// never comes (containerd failed between start and Create): after it, the
// shim lingers and ends as if the task had come and gone.
const reservationTTL = 30 * time.Second

// reserveTimeout bounds start's reservation with a live shim: one that
// does not answer within it is taken for dead and its socket replaced.
const reserveTimeout = 10 * time.Second

// lockDir takes the exclusive lock of dir, which every start and every
// ending shim of the node take (flock, released when the process dies).
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// reserve reserves container id with the shim listening at path, which
// then holds on until the id's Create. It fails if no shim answers there
// or the shim refuses (it is ending, or predates reservations).
func reserve(path, id string) error {
	conn, err := net.DialTimeout("unix", path, reserveTimeout)
	if err != nil {
		return err
	}
	c := ttrpc.NewClient(conn)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), reserveTimeout)
	defer cancel()
	return c.Call(ctx, reserveService, reserveMethod, wrapperspb.String(id), &emptypb.Empty{})
}

// registerReserve serves Reserve for svc on srv.
func registerReserve(srv *ttrpc.Server, svc *Service) {
	srv.RegisterService(reserveService, &ttrpc.ServiceDesc{Methods: map[string]ttrpc.Method{
		reserveMethod: func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var id wrapperspb.StringValue
			if err := unmarshal(&id); err != nil {
				return nil, err
			}
			if err := svc.Reserve(id.Value); err != nil {
				return nil, err
			}
			return &emptypb.Empty{}, nil
		},
	}})
}

// endpoint is a serving shim's socket as starts find it.
//
// Which shim a socket is is told by a token beside it, not by the
// socket's inode: on a disk file system a removed socket's inode number
// is given to the next socket made, often the very next one at the same
// path, so an old shim ending late took a newer shim's socket for its own
// and removed it (TestStartMeetsEndingShim failed one run in ten so).
// start writes a fresh random token into the socket's owner file (its
// path and ownerSuffix) as it makes the socket, under the lock, and hands
// it to the shim it starts; the shim removes the socket only while the
// owner file still holds its token.
type endpoint struct {
	dir, path string
	// token is the shim's own, as start wrote it; empty for a shim given
	// none, which then never removes the socket (a start replaces a
	// socket nobody answers at).
	token string
}

// ownerSuffix names a socket's owner file: the socket's path and it.
const ownerSuffix = ".owner"

func newEndpoint(dir, path, token string) *endpoint {
	return &endpoint{dir: dir, path: path, token: token}
}

// newOwnerToken is a fresh token for a socket start makes.
func newOwnerToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// claim records token as the owner of the socket at path, replacing any
// earlier owner's. The caller holds the lock.
func claim(path, token string) error {
	tmp := path + ownerSuffix + ".new"
	if err := os.WriteFile(tmp, []byte(token), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path+ownerSuffix); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// lock takes the node's lock of starts (lockDir).
func (e *endpoint) lock() (func(), error) { return lockDir(e.dir) }

// withdraw removes the socket, and its owner file, if the socket is still
// the shim's own. The caller holds the lock.
func (e *endpoint) withdraw() {
	if e.token == "" {
		return
	}
	b, err := os.ReadFile(e.path + ownerSuffix)
	if err != nil || string(b) != e.token {
		return // another shim's since, or none
	}
	os.Remove(e.path)
	os.Remove(e.path + ownerSuffix)
}

// errEnding is what an ending shim answers a reservation or a Create.
func errEnding() error {
	return status.Errorf(codes.Unavailable, "ampoule shim: this shim is ending; retry for a new one")
}
