package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/runtime"
	"github.com/ampoule-run/ampoule/sealed"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/snp"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// sealedMount is a run's sealed mount: the encrypted store on the host's
// disk and the plaintext workspace in memory that the workload sees.
type sealedMount struct {
	file      string
	workspace string
	key       []byte
	max       int64
	unlock    func()
	release   func() // removes the workspace, once
	// dropAtExit unregisters release from the cleanups of a forced exit.
	dropAtExit func()
	removed    sync.Once
	// opened is what was unpacked: entries, and whether a store existed.
	opened int
	found  bool
}

// defaultSealedFile is where a bundle's store lives when --sealed names no
// file: one per bundle name and profile, in the user's state directory.
func defaultSealedFile(name, profile string) (string, error) {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", errcode.Errorf(errcode.Usage, "no home directory for the sealed store: %v", err).WithHint("pass --sealed FILE")
		}
		dir = filepath.Join(home, ".local", "state")
	}
	dir = filepath.Join(dir, "ampoule", "sealed")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", errcode.Errorf(errcode.SealedStoreIO, "%v", err).WithHint("pass --sealed FILE in a writable directory")
	}
	return filepath.Join(dir, name+"."+profile+".sealed"), nil
}

// teeSealingKey is the backend's sealing key for the measurement; TDX,
// and SEV-SNP without its device, have none.
func teeSealingKey(ctx context.Context, be tee.Backend, m *loader.Manifest, mm loader.Measurement) ([]byte, error) {
	key, err := be.SealingKey(ctx, mm)
	if errors.Is(err, tdx.ErrNoSealingKey) || errors.Is(err, snp.ErrNoSealingDevice) {
		return nil, errcode.Errorf(errcode.SealingUnavailable, "the manifest has a sealed mount (%s) and backend %s gives no sealing key: %v", m.Sealed.Guest, be.Name(), err).
			WithHint(`set key = "broker" in [sealed], with a [broker], so that the tenant's broker releases the key`)
	}
	if err != nil {
		return nil, errcode.Errorf(errcode.TEEUnavailable, "the sealing key: %v", err)
	}
	return key, nil
}

// openSealed opens the manifest's sealed mount for a run with its sealing
// key: it opens the store (a missing one is a first run), unpacks it into
// a fresh memory-backed workspace and mounts that writable at the
// manifest's guest path. Nothing is changed on the host's disk until seal.
func openSealed(key []byte, m *loader.Manifest, profile, file string, spec *runtime.Spec) (*sealedMount, error) {
	var err error
	if file == "" {
		if file, err = defaultSealedFile(m.Name, profile); err != nil {
			return nil, err
		}
	}
	s := &sealedMount{file: file, key: key, max: m.Sealed.MaxBytes}
	if s.unlock, err = sealed.Lock(file); err != nil {
		return nil, sealedError(err, file)
	}
	entries, found, err := sealed.Load(file, key, s.max)
	if err != nil {
		s.unlock()
		return nil, sealedError(err, file)
	}
	// The store is written after the run: find out now, before the
	// workload does any work, whether it can be.
	if err := sealed.Writable(file); err != nil {
		s.unlock()
		return nil, errcode.Errorf(errcode.SealedStoreIO, "the sealed store cannot be written: %v", err).
			WithHint("pass --sealed FILE in a directory that exists and is writable")
	}
	var release func()
	if s.workspace, release, err = sealed.NewWorkspace(sealed.WorkspaceBases()); err != nil {
		s.unlock()
		return nil, errcode.Errorf(errcode.WorkspaceUnavailable, "%v", err)
	}
	// The plaintext goes on every exit path the launcher sees: this run's
	// end, a panic unwinding it, or a forced exit on a second signal.
	s.release = sync.OnceFunc(release)
	s.dropAtExit = atExit(s.release)
	if err := sealed.WriteDir(s.workspace, entries); err != nil {
		s.remove()
		return nil, errcode.Errorf(errcode.SealedStoreIO, "unpacking the sealed store into its workspace: %v", err)
	}
	// The workspace is memory: what the workload writes there while it runs
	// is bounded by max_size too, not only what it leaves at the end.
	spec.Dirs = append(spec.Dirs, runtime.Mount{Host: s.workspace, Guest: m.Sealed.Guest, Writable: true, MaxBytes: s.max})
	s.opened, s.found = len(entries), found
	return s, nil
}

// seal puts what the workload left in the sealed mount back into the
// store and removes the plaintext. It runs after the runner has exited,
// whatever the run's outcome: a workload that failed keeps what it wrote,
// as it would on a disk. A tree over max_size is not sealed and the old
// store stays.
func (s *sealedMount) seal(log hclog.Logger) error {
	defer s.remove()
	entries, err := sealed.ReadDir(s.workspace, s.max)
	if err != nil {
		return sealedError(err, s.file)
	}
	if err := sealed.Save(s.file, s.key, entries, s.max); err != nil {
		return sealedError(err, s.file)
	}
	log.Info("sealed mount sealed", "store", s.file, "entries", len(entries))
	return nil
}

// remove deletes the plaintext workspace and lets the store go. It may be
// called more than once.
func (s *sealedMount) remove() {
	s.removed.Do(func() {
		s.dropAtExit()
		s.release()
		clear(s.key)
		s.unlock()
	})
}

// sealedError gives a sealed-store failure its registered code.
func sealedError(err error, file string) error {
	switch {
	case errors.Is(err, sealed.ErrForeign):
		return errcode.Errorf(errcode.SealedStoreForeign, "%s: %v", file, err).
			WithHint("the store opens only for the bundle, profile and machine that sealed it; pass --sealed FILE for another store, or remove " + file + " to start over")
	case errors.Is(err, sealed.ErrTampered):
		return errcode.Errorf(errcode.SealedStoreTampered, "%s: %v", file, err)
	case errors.Is(err, sealed.ErrBusy):
		return errcode.Errorf(errcode.SealedStoreBusy, "%v", err).
			WithHint("wait for the other run to end, or pass --sealed FILE for another store")
	case errors.Is(err, regfile.ErrNotRegular):
		return errcode.Errorf(errcode.Usage, "the sealed store %v", err).
			WithHint("pass --sealed FILE naming a regular file, or one that does not exist yet")
	case errors.Is(err, sealed.ErrTooLarge):
		return errcode.Errorf(errcode.SealedSizeLimit, "the sealed mount: %v; %s was kept as it was", err, file)
	}
	return errcode.Errorf(errcode.SealedStoreIO, "%s: %v", file, err)
}
