package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// A runner makes itself not dumpable (Protect) as it starts, but exec
// makes every process dumpable again when its user may read the image it
// runs, and a process of the same user that attaches with ptrace, or
// opens /proc/PID/mem, between the exec and Protect keeps that access
// afterwards. So a protected run's runner is exec'd from an image its
// user cannot read, which the kernel starts not dumpable: the launch
// executable itself where it is installed so (mode 0711, owned by
// another user) or where the launcher runs as root (whose processes no
// other user may trace), and otherwise an execute-only copy in sealed
// memory, made once a process and used for every runner it starts.

// runnerImage is the path a runner of exe is exec'd from, and the
// identity of the executable it is (launcherID): exe itself for an
// unprotected run, and for a protected one an image its user cannot read
// (see above). Each image is opened once, by descriptor, and the runner
// is exec'd from that descriptor, so the image checked is the one that
// runs.
func runnerImage(exe string, protect bool) (path, id string, err error) {
	if !protect || os.Geteuid() == 0 {
		var st unix.Stat_t
		if err := unix.Stat(exe, &st); err != nil {
			return exe, "", nil // the runner identifies itself
		}
		return exe, launcherID(&st), nil
	}
	images.mu.Lock()
	defer images.mu.Unlock()
	if img, ok := images.byExe[exe]; ok {
		return img.path, img.id, nil
	}
	img, err := openImage(exe)
	if err != nil {
		return "", "", err
	}
	if images.byExe == nil {
		images.byExe = map[string]image{}
	}
	images.byExe[exe] = img
	return img.path, img.id, nil
}

// image is a runner image: the path of its descriptor and the identity of
// the executable it is.
type image struct{ path, id string }

// images are the runner images this process made, by executable. Their
// descriptors stay open as long as the process.
var images struct {
	mu    sync.Mutex
	byExe map[string]image
}

// openImage opens exe by descriptor and returns an image of it its user
// cannot read: the descriptor itself where exe is not readable, else an
// execute-only sealed copy.
func openImage(exe string) (image, error) {
	fd, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return image{}, fmt.Errorf("opening the runner's executable: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return image{}, fmt.Errorf("opening the runner's executable: %w", err)
	}
	img := image{path: fmt.Sprintf("/proc/self/fd/%d", fd), id: launcherID(&st)}
	// Reopened through the descriptor: the same file, whatever exe names
	// by now.
	src, err := os.OpenFile(img.path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrPermission) {
		return img, nil
	}
	unix.Close(fd)
	if err != nil {
		return image{}, fmt.Errorf("reading the runner's executable: %w", err)
	}
	defer src.Close()
	img.path, err = execOnlyCopy(src, st.Size)
	return img, err
}

// imageSeals are the seals of a runner image's copy: no byte of it
// changes once written.
const imageSeals = unix.F_SEAL_WRITE | unix.F_SEAL_GROW | unix.F_SEAL_SHRINK | unix.F_SEAL_SEAL

// execOnlyCopy copies src into sealed memory that its owner may execute
// but not read, and returns the path of a descriptor of it that is not
// open for writing (exec refuses a file open for writing).
func execOnlyCopy(src *os.File, size int64) (string, error) {
	fd, err := unix.MemfdCreate("ampoule-runner", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("making the runner's image: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "ampoule-runner")
	defer mem.Close()
	n, err := io.Copy(mem, src)
	if err != nil {
		return "", fmt.Errorf("copying the runner's image: %w", err)
	}
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, imageSeals); err != nil {
		return "", fmt.Errorf("sealing the runner's image: %w", err)
	}
	var mst unix.Stat_t
	if err := unix.Fstat(int(mem.Fd()), &mst); err != nil {
		return "", fmt.Errorf("sealing the runner's image: %w", err)
	}
	if n != size || mst.Size != n {
		return "", fmt.Errorf("the runner's image holds %d bytes of the executable's %d", mst.Size, size)
	}
	if err := unix.Fchmod(int(mem.Fd()), 0o100); err != nil {
		return "", fmt.Errorf("making the runner's image execute-only: %w", err)
	}
	ro, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", mem.Fd()), unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("opening the runner's image: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", ro), nil
}
