package tdx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/rtmr"
	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/tee"
)

// RTMRIndex is the register a run's measurement is extended into: RTMR3,
// which TDX firmware and the kernel leave to the runtime (RTMR0 holds the
// firmware's configuration, RTMR1 the loader and kernel, RTMR2 the OS).
const RTMRIndex = 3

// ErrNoRTMR: the platform offers no way to extend an RTMR.
var ErrNoRTMR = errors.New("this TDX guest offers no RTMR extension (configfs-tsm " + tee.ConfigfsRTMRs + ")")

// WithRTMR makes the backend extend runs' measurements into RTMR3 through
// c, a configfs-tsm client (go-configfs-tsm's linuxtsm on a guest, its
// fakertmr in tests). lock names a file whose flock keeps runs on this
// machine from interleaving their extension and their quote.
func (b *Backend) WithRTMR(c configfsi.Client, lock string) *Backend {
	b.rtmr, b.lock = c, lock
	return b
}

// openRTMR returns the kernel's configfs-tsm client when it offers RTMRs.
func openRTMR() configfsi.Client {
	if _, err := os.Stat(tee.ConfigfsRTMRs); err != nil {
		return nil
	}
	c, err := linuxtsm.MakeClient()
	if err != nil {
		return nil
	}
	return c
}

// AttestExtended implements tee.Extender: it extends RTMR3 with the run's
// event digest and takes a quote, holding the machine-wide lock so that no
// other run extends in between, and returns the event that lets a verifier
// tie RTMR3 in the quote to the measurement.
func (b *Backend) AttestExtended(ctx context.Context, measurement [48]byte, reportData [64]byte) (tee.Evidence, *tee.Event, error) {
	if b.rtmr == nil {
		return tee.Evidence{}, nil, ErrNoRTMR
	}
	lockCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	unlock, err := flock(lockCtx, b.lock)
	if err != nil {
		return tee.Evidence{}, nil, fmt.Errorf("the RTMR lock: %w", err)
	}
	defer unlock()
	before, err := rtmr.GetDigest(b.rtmr, RTMRIndex)
	if err != nil {
		return tee.Evidence{}, nil, fmt.Errorf("reading RTMR%d: %w", RTMRIndex, err)
	}
	if len(before.Digest) != 48 {
		return tee.Evidence{}, nil, fmt.Errorf("RTMR%d reads as %d bytes, not 48", RTMRIndex, len(before.Digest))
	}
	d := tee.EventDigest(measurement)
	if err := rtmr.ExtendDigest(b.rtmr, RTMRIndex, d[:]); err != nil {
		return tee.Evidence{}, nil, fmt.Errorf("extending RTMR%d: %w", RTMRIndex, err)
	}
	ev, err := b.Attest(ctx, reportData)
	if err != nil {
		return tee.Evidence{}, nil, err
	}
	return ev, &tee.Event{Register: RTMRIndex, Before: before.Digest, Digest: d[:]}, nil
}

// DefaultRTMRLock is the lock file runs on one machine share: in /run,
// which only root may write, when launch runs as root (as it does in a TD),
// else in the temporary directory.
func DefaultRTMRLock() string {
	if os.Geteuid() == 0 {
		if st, err := os.Stat("/run"); err == nil && st.IsDir() {
			return "/run/ampoule-rtmr.lock"
		}
	}
	return filepath.Join(os.TempDir(), "ampoule-rtmr.lock")
}

// flock takes an exclusive lock on the file at path (made if need be, and
// never through a link), waiting at most as long as ctx allows.
func flock(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%s is held by another run: %w", path, context.Cause(ctx))
		case <-time.After(10 * time.Millisecond):
		}
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}
