package codecache

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMemoryTierSwappedForALink: the memory tier's default home is in
// /dev/shm, sticky and everyone's, where a process of an ordinary user
// can make the tier's name first, as its own: a directory of its own, or
// a link to a directory of root's on tmpfs. Exchanged as fast as it can
// between the two, the name must never be taken as the tier: neither
// object is root's directory at that name, and a tier accepted through
// the link would be one whose name its owner re-points afterwards at a
// directory holding code of its own choosing, which wazero opens by path.
func TestMemoryTierSwappedForALink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the memory tier is root's: this test runs as root")
	}
	shm, err := os.MkdirTemp("/dev/shm", "ampoule-codecache-race-")
	if err != nil {
		t.Fatalf("the memory tier needs /dev/shm (tmpfs): %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	// The sticky parent everyone may make names in, as /dev/shm.
	parent := filepath.Join(shm, "shm")
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(parent, 0o1777); err != nil {
		t.Fatal(err)
	}
	// A directory of root's on tmpfs, others unable to write it (as /run
	// is): what the link points at.
	rootDir := filepath.Join(shm, "roots")
	if err := os.Mkdir(rootDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The other user's two objects, one at the tier's name at a time.
	name, alt := filepath.Join(parent, "ampoule-code-0"), filepath.Join(parent, "alt")
	if err := os.Mkdir(name, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(name, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rootDir, alt); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(alt, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var swapper sync.WaitGroup
	swapper.Add(1)
	go func() {
		defer swapper.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, name, unix.AT_FDCWD, alt, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("exchanging the names: %v", err)
				return
			}
		}
	}()
	mod := module(t)
	accepted := 0
	seen := map[string]int{}
	defer func() { t.Log(seen) }()
	for range 20000 {
		if _, err := Open(mod, Options{Memory: name}); err == nil {
			accepted++
		} else if testing.Verbose() {
			seen[err.Error()]++
		}
	}
	close(stop)
	swapper.Wait()
	if accepted > 0 {
		t.Errorf("a memory tier that was never root's directory at its name was taken %d times in 20000", accepted)
	}
}
