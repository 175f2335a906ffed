package ampoule

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/tee"
)

// ListenUnix makes a server's socket at addr, unix:PATH, and returns it
// with its path: owner-only from the moment it exists, never in place of
// a file that is not a socket or of a socket a server answers on (a stale
// one is replaced); the listener leaves the socket when closed, for the
// caller to remove. Its refusals are about the host's own input (E1001,
// E1071) and keep their detail.
func ListenUnix(addr string) (net.Listener, string, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok || path == "" {
		return nil, "", errcode.Errorf(errcode.Usage, "--listen %q is not unix:PATH", addr).Host()
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: a file that is not a socket is there", path).Host()
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: a server answers there", path).Host()
		}
		if err := os.Remove(path); err != nil {
			return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: removing the stale socket: %v", path, err).Host()
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: %v", path, err).Host()
	}
	// Made owner-only: no moment at which another user may connect.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, "", errcode.Errorf(errcode.ServerSocketRefused, "--listen %s: %v", path, err).Host()
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	return l, path, nil
}

// WriteNewFile writes data to a file that must not exist yet (E1031
// output-exists if it does, with hint); a file is never overwritten.
func WriteNewFile(path string, data []byte, perm os.FileMode, hint string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if os.IsExist(err) {
		return errcode.Errorf(errcode.OutputExists, "%v", err).WithHint(hint)
	}
	if err != nil {
		return errcode.Errorf(errcode.Usage, "%v", err).WithHint(hint)
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Close()); err != nil {
		return errcode.Errorf(errcode.Internal, "writing %s: %v", path, err)
	}
	return nil
}

// WriteText says what the platform offers, and what it lacks, as launch
// platform info prints it.
func (info PlatformInfo) WriteText(w io.Writer) {
	show := func(label, path string) {
		if path == "" {
			path = "missing"
		}
		fmt.Fprintf(w, "  %-14s %s\n", label, path)
	}
	fmt.Fprintln(w, "Attestation devices:")
	show("sev-guest", info.SEVGuest)
	show("tdx_guest", info.TDXGuest)
	show("configfs-tsm", info.ConfigfsTSM)
	show("rtmrs", info.ConfigfsRTMRs)
	fmt.Fprintln(w, "Sealed mounts:")
	show("workspace", info.SealedWorkspace)
	fmt.Fprintln(w, "Simulator (insecure):")
	simPub := info.SimKey
	if simPub == "" {
		simPub = "none yet (the first simulator run, attest or 'policy new --backend sim' makes it)"
	}
	show("key", simPub)
	switch info.TEE {
	case "":
		fmt.Fprintln(w, "\nThis machine is not a confidential VM guest: production cannot run here.")
		fmt.Fprintln(w, "Run inside an SEV-SNP or TDX guest, or use --profile debug or staging with --backend sim (insecure).")
	default:
		fmt.Fprintf(w, "\nThis machine is a %s guest: --backend auto (or %s) attests through it.\n", info.TEE, info.TEE)
	}
	if info.TEE == "tdx" && info.ConfigfsRTMRs == "" {
		fmt.Fprintf(w, "This kernel offers no RTMR extension (%s): runs are bound by report data only,\nand a policy with tdx_require_rtmr refuses their evidence. Kernels with configfs-tsm RTMR support offer it.\n", tee.ConfigfsRTMRs)
	}
	if info.TEE == "tdx" {
		fmt.Fprintln(w, "TDX gives a guest no sealing key: manifests with a [sealed] mount are refused here until the broker releases one.")
	}
	if info.SealedWorkspace == "" {
		fmt.Fprintln(w, "No memory-backed directory for sealed mounts: mount a tmpfs at /dev/shm or set XDG_RUNTIME_DIR to one.")
	}
}
