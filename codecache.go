package ampoule

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/codecache"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/sealed"
	"github.com/ampoule-run/ampoule/tee"
)

// codeCache gives a run under a profile without an unauthenticated disk
// cache the authenticated one (package codecache): compiled code kept in
// the VM's memory, and on the host's disk under a MAC the TEE keys for
// the measurement. It is an optimization only: whatever goes wrong with
// it, the run compiles in memory, and the tenant's log says why.
func (r *run) codeCache(ctx context.Context, b *loader.Bundle, spec *sandbox.Spec, measurement func() loader.Measurement, log hclog.Logger) *codecache.Cache {
	if r.profile.DiskCache || r.cfg.NoCache || r.cfg.MeasuredCode != "" {
		return nil
	}
	disk := r.cfg.CacheDir
	if disk == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			disk = filepath.Join(dir, "ampoule", "code")
		}
	}
	opts := codecache.Options{Memory: r.cfg.CodeMemory, Disk: disk, Key: func() ([]byte, error) { return r.codeKey(ctx, measurement(), log) },
		ModuleDigest: spec.ModuleDigest}
	c, err := codecache.Open(b.Module, opts)
	if err != nil {
		log.Warn("compilation cache not used: the module is compiled in memory", "error", err)
		return nil
	}
	switch c.Outcome() {
	case codecache.Refused:
		log.Warn("compilation cache entry refused: the module is compiled again and the entry replaced", "reason", c.Reason())
	default:
		log.Info("compilation cache", "outcome", c.Outcome().String())
	}
	spec.CacheDir = c.Dir()
	if hit := c.Outcome() == codecache.MemoryHit || c.Outcome() == codecache.DiskHit; hit && spec.InterpretFirst && spec.ModuleDigest != nil {
		// The code is there (a disk entry just verified and imported, or
		// the memory tier's): the run compiles from it, not interpreting.
		sandbox.MarkCompiled(c.Dir(), spec.ModuleDigest())
	}
	return c
}

// commitCode stores what the run compiled, if it compiled.
func (r *run) commitCode(c *codecache.Cache, log hclog.Logger) {
	if c == nil {
		return
	}
	stored, err := c.Commit()
	switch {
	case err != nil:
		log.Warn("compilation cache: the compiled code was not stored", "error", err)
	case stored:
		log.Info("compilation cache: compiled code stored, authenticated")
	}
}

// errNoCodeKey: the backend derives no keys of its own (TDX), so compiled
// code lasts only in the VM's memory.
var errNoCodeKey = errors.New("the backend derives no key to authenticate compiled code on disk with; it is kept in memory only")

// codeKey is the compilation cache's MAC key: the backend's key for the
// measurement with its own label. As with the sealing key, a TEE's key is
// taken only once the run's own evidence is judged.
func (r *run) codeKey(ctx context.Context, mm loader.Measurement, log hclog.Logger) ([]byte, error) {
	be, err := r.backend()
	if err != nil {
		return nil, err
	}
	kd, ok := be.(tee.KeyDeriver)
	if !ok {
		return nil, errNoCodeKey
	}
	if !be.Insecure() {
		if _, err := r.attest(ctx, mm, nil, func(msg string) { log.Warn(msg) }); err != nil {
			return nil, err
		}
	}
	key, err := kd.DeriveKey(ctx, mm, codecache.KeyLabel)
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "the compilation cache's key: %v", err)
	}
	return key, nil
}

// checkMeasuredCode refuses a Config.MeasuredCode that is not a directory
// in memory (tmpfs or ramfs, as a VM's initramfs is unpacked into) that
// root owns and only root can change: what wazero executes from it is
// trusted as the measured image is, so nothing but the trust boundary may
// write there.
func checkMeasuredCode(dir string) error {
	st, err := os.Lstat(dir)
	if err != nil {
		return errcode.Errorf(errcode.CacheUnavailable, "the measured image's compiled code: %v", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	switch {
	case !st.IsDir():
		return errcode.Errorf(errcode.CacheUnavailable, "the measured image's compiled code %s is not a directory", dir)
	case !sealed.MemoryBacked(dir):
		return errcode.Errorf(errcode.CacheUnavailable, "the measured image's compiled code %s is not in memory (tmpfs or ramfs)", dir)
	case !ok || sys.Uid != 0 || st.Mode().Perm()&0o022 != 0:
		return errcode.Errorf(errcode.CacheUnavailable, "the measured image's compiled code %s is not root's alone (mode %v)", dir, st.Mode().Perm())
	}
	return nil
}
