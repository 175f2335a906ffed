package ctrshim

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/api/events"
)

// listenAt makes a socket at path as start does: any earlier one removed,
// the new one claimed with a fresh token. It returns the token and the
// socket's inode and a func that closes its listener.
func listenAt(t *testing.T, path string) (string, uint64, func()) {
	t.Helper()
	token, err := newOwnerToken()
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	t.Cleanup(func() { l.Close() })
	closeIt := func() { l.Close() }
	if err := claim(path, token); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return token, fi.Sys().(*syscall.Stat_t).Ino, closeIt
}

// TestWithdrawLeavesAnothersSocket: a shim ending after a start replaced
// its socket (it stopped answering, or ended late) must leave the new
// shim's socket, even where the new socket has the old one's inode
// number, which a disk file system gives out again at once; and a shim
// removes its own socket and owner file. Before the owner token, the
// shim recognised its socket by inode and removed the newer one.
func TestWithdrawLeavesAnothersSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s")
	oldToken, oldIno, closeOld := listenAt(t, path)
	old := newEndpoint(dir, path, oldToken)
	// The old shim's server closed its listener as it began to end; the
	// socket's inode is free for the next.
	closeOld()
	newToken, newIno, _ := listenAt(t, path)
	t.Logf("the old socket's inode %d, the new one's %d (reused: %v)", oldIno, newIno, oldIno == newIno)
	old.withdraw()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the old shim's withdraw removed the new shim's socket: %v", err)
	}
	if b, _ := os.ReadFile(path + ownerSuffix); string(b) != newToken {
		t.Fatalf("the owner file holds %q, want the new shim's token", b)
	}
	// A shim given no token never removes a socket.
	newEndpoint(dir, path, "").withdraw()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a shim with no token removed the socket: %v", err)
	}
	newEndpoint(dir, path, newToken).withdraw()
	for _, p := range []string{path, path + ownerSuffix} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("the shim's own withdraw left %s (%v)", p, err)
		}
	}
}

// TestPublishAfterClose: a task whose run ends as the shim ends publishes
// after the Publisher closed; that is dropped, not a send on a closed
// channel (which ended the shim, and every task it held, with a panic).
func TestPublishAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p, err := NewPublisher(path, "ns")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p.Publish(context.Background(), "/tasks/exit", &events.TaskExit{ContainerID: "c"})
}

// TestShimLogTakesOnlyAFile: the warm shims' log is opened by start,
// which containerd waits for, so what stands at its path must not hold
// it: a FIFO nobody reads, a link, a device or a directory is refused at
// once (the shim then runs with its errors discarded), and a regular
// file, new or not, is appended to.
func TestShimLogTakesOnlyAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "target"), link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, link, "/dev/null", dir} {
		t.Setenv(EnvLog, p)
		done := make(chan *os.File, 1)
		go func() { done <- openShimLog() }()
		select {
		case f := <-done:
			if f != nil {
				f.Close()
				t.Errorf("the shim log was opened at %s", p)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("opening the shim log at %s did not return", p)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "target")); !os.IsNotExist(err) {
		t.Errorf("the link's target was made (%v)", err)
	}
	file := filepath.Join(dir, "shim.log")
	t.Setenv(EnvLog, file)
	for _, line := range []string{"one\n", "two\n"} {
		f := openShimLog()
		if f == nil {
			t.Fatalf("no shim log at %s", file)
		}
		f.WriteString(line)
		f.Close()
	}
	if b, _ := os.ReadFile(file); string(b) != "one\ntwo\n" {
		t.Errorf("the shim log holds %q", b)
	}
}
