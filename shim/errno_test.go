package shim

import (
	"fmt"
	"strings"
	"testing"
)

// TestErrnoTable holds the one errno table to the WASI preview 1 standard:
// 77 numbers, success first, then the POSIX names in alphabetical order
// (the standard's own order, so a name out of place shows), ENOTCAPABLE
// last; each named once, and no name for a number past the table.
func TestErrnoTable(t *testing.T) {
	if len(errnoNames) != 77 || ENOTCAPABLE != 76 {
		t.Fatalf("%d errnos, ENOTCAPABLE %d; WASI preview 1 has 77, ENOTCAPABLE 76", len(errnoNames), ENOTCAPABLE)
	}
	seen := map[string]bool{}
	for i, n := range errnoNames {
		if n == "" || seen[n] {
			t.Errorf("errno %d: name %q missing or twice", i, n)
		}
		seen[n] = true
		if i > 0 && !strings.HasPrefix(n, "E") {
			t.Errorf("errno %d: %q is not a POSIX name", i, n)
		}
		if i > 1 && i < 76 && errnoNames[i-1] >= n {
			t.Errorf("errno %d: %s after %s, out of the standard's order", i, n, errnoNames[i-1])
		}
	}
	for e, want := range map[Errno]string{
		ESUCCESS: "success", E2BIG: "E2BIG", EACCES: "EACCES", EBADF: "EBADF", EINVAL: "EINVAL",
		ENOENT: "ENOENT", ENOSYS: "ENOSYS", ENOTSUP: "ENOTSUP", EPERM: "EPERM", EROFS: "EROFS", EXDEV: "EXDEV",
	} {
		if e.String() != want {
			t.Errorf("errno %d: %q, want %q", e, e, want)
		}
	}
	// The numbers the standard gives, as a module compiled against it sees
	// them.
	for e, want := range map[Errno]uint16{EACCES: 2, EBADF: 8, EINVAL: 28, ENOENT: 44, ENOSYS: 52, ENOTSUP: 58, EPERM: 63, EROFS: 69, EXDEV: 75} {
		if uint16(e) != want {
			t.Errorf("%v is %d, want %d", e, uint16(e), want)
		}
	}
	for _, n := range []uint32{77, 1 << 16, 1<<32 - 1} {
		if got := ErrnoName(n); got != fmt.Sprint("errno ", n) {
			t.Errorf("ErrnoName(%d) = %q", n, got)
		}
	}
}
