package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// mkfifo makes a named pipe at p.
func mkfifo(t *testing.T, p string) string {
	t.Helper()
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestNonRegularFilesAreRefused: a FIFO (or a link to one) where launch
// reads a manifest, a module, a bare module or a sealed store, and a
// character device as a module, is refused at once with a registered code.
// Opening a FIFO for reading blocks until a writer comes, so a launcher that
// opens one plainly hangs; the test then plays the writer, so that the old
// behaviour fails instead of hanging.
func TestNonRegularFilesAreRefused(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	module, err := os.ReadFile(filepath.Join(hello, "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := "name = \"hello\"\nprofiles = [\"debug\"]\n"
	bundleWith := func(t *testing.T, fifo string) (string, string) {
		dir := t.TempDir()
		if fifo != "ampoule.toml" {
			writeManifest(t, dir, manifest)
		}
		if fifo != "module.wasm" {
			os.WriteFile(filepath.Join(dir, "module.wasm"), module, 0o644)
		}
		return dir, mkfifo(t, filepath.Join(dir, fifo))
	}
	for _, tc := range []struct {
		name string
		// setup returns launch's arguments and the FIFO to unblock, if any.
		setup func(t *testing.T) ([]string, string)
		code  errcode.Code
	}{
		{"manifest", func(t *testing.T) ([]string, string) {
			dir, fifo := bundleWith(t, "ampoule.toml")
			return []string{dir}, fifo
		}, errcode.BundleMalformed},
		{"module", func(t *testing.T) ([]string, string) {
			dir, fifo := bundleWith(t, "module.wasm")
			return []string{dir}, fifo
		}, errcode.BundleMalformed},
		{"module linked to a fifo", func(t *testing.T) ([]string, string) {
			dir := t.TempDir()
			writeManifest(t, dir, manifest)
			fifo := mkfifo(t, filepath.Join(t.TempDir(), "pipe"))
			os.Symlink(fifo, filepath.Join(dir, "module.wasm"))
			return []string{dir}, fifo
		}, errcode.BundleMalformed},
		{"bare module", func(t *testing.T) ([]string, string) {
			fifo := mkfifo(t, filepath.Join(t.TempDir(), "m.wasm"))
			return []string{fifo}, fifo
		}, errcode.BundleMalformed},
		{"bare module linked to a fifo", func(t *testing.T) ([]string, string) {
			fifo := mkfifo(t, filepath.Join(t.TempDir(), "pipe"))
			link := filepath.Join(t.TempDir(), "m.wasm")
			os.Symlink(fifo, link)
			return []string{link}, fifo
		}, errcode.BundleMalformed},
		{"bare module linked to /dev/zero", func(t *testing.T) ([]string, string) {
			link := filepath.Join(t.TempDir(), "zero.wasm")
			os.Symlink("/dev/zero", link)
			return []string{link}, ""
		}, errcode.BundleMalformed},
		{"bundle that is /dev/zero", func(t *testing.T) ([]string, string) {
			return []string{"/dev/zero"}, ""
		}, errcode.BundleMalformed},
		{"sealed store", func(t *testing.T) ([]string, string) {
			fifo := mkfifo(t, filepath.Join(t.TempDir(), "notes.sealed"))
			return []string{"--sim-key", filepath.Join(t.TempDir(), "sim.key"), "--sealed", fifo, testwasm.Example(t, "notebook")}, fifo
		}, errcode.Usage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args, fifo := tc.setup(t)
			done := make(chan result, 1)
			go func() { done <- launch(t, append([]string{"run", "--no-cache"}, args...)...) }()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second):
				if fifo != "" { // be the writer the blocked open waits for
					if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
						w.Close()
					}
				}
				r = <-done
				t.Errorf("launch blocked on %s until a writer came", fifo)
			}
			if r.code != tc.code.Class().ExitStatus() || !strings.Contains(r.stderr, tc.code.String()) || !strings.Contains(r.stderr, "not a regular file") {
				t.Errorf("got %+v, want %v for a file that is not regular", r, tc.code)
			}
		})
	}
}
