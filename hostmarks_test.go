package ampoule_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/tee"
)

// TestInterpretFirstTakesNothingFromTheHostsDisk: the marks that tell an
// InterpretFirst run its code is compiled, and wazero's own code beside
// them, are what a debug run leaves in the host's cache directory; a host
// can make them for any module it has. Planted in the directory a staging
// run is given as its disk tier (by a debug run of the same module, as
// links, FIFOs and directories at every name), they make the staging run
// neither hit, nor hang, nor fail: it interprets, as a first run does, and
// only the next run in the same VM, from the authenticated memory tier,
// starts from compiled code.
func TestInterpretFirstTakesNothingFromTheHostsDisk(t *testing.T) {
	vm := newStagingVMs(t, "debug,staging")
	// The host's own run of the module, under debug, with the directory
	// that is then the staging run's disk tier: its marks and its code.
	for range 2 {
		var out testwasm.SyncBuffer
		if _, err := ampoule.Run(context.Background(), vm.bundle, ampoule.Config{
			Profile: "debug", Backend: tee.KindSim, SimKey: vm.simKey, CacheDir: vm.disk, InterpretFirst: true,
			Stdout: &out, Stderr: &out,
		}); err != nil {
			t.Fatal(err)
		}
	}
	var marks []string
	filepath.WalkDir(vm.disk, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "compiled-") {
			marks = append(marks, p)
		}
		return nil
	})
	if len(marks) == 0 {
		t.Fatalf("the debug runs left no compiled marks in %s", vm.disk)
	}
	// Beside each, the same name as a link to it, a FIFO and a directory,
	// and the same under every directory of the cache.
	var dirs []string
	filepath.WalkDir(vm.disk, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, dir := range dirs {
		for i, m := range marks {
			name := filepath.Base(m)
			os.Symlink(m, filepath.Join(dir, name+".link"))
			if i == 0 {
				syscall.Mkfifo(filepath.Join(dir, name), 0o600)
			} else {
				os.Mkdir(filepath.Join(dir, name), 0o700)
			}
		}
	}
	first := ampoule.Config{InterpretFirst: true}
	vm.newVM()
	vm.expect("a staging run beside the host's marks", "cache=interpreted", first)
	vm.expect("the next run in the VM", "cache=hit", first)
}
