package audit

import (
	"debug/elf"
	"debug/gosym"
	"os"
	"strings"
	"testing"
)

// TestNoKernelProbeAtInit: cilium/ebpf's rlimit package probes the kernel
// from its package initialisation (it creates a BPF map, and reads the
// mount table), which every process of a binary importing this package
// then pays as it starts, each launcher and each runner, audit or not:
// about 3 ms of CPU here. This test binary links what the package
// imports; no function of the probe's package may be among it.
func TestNoKernelProbeAtInit(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		t.Fatal("the test binary has no Go function table")
	}
	data, err := pcln.Data()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Funcs) == 0 || tab.LookupFunc("github.com/ampoule-run/ampoule/shim/audit.Start") == nil {
		t.Fatal("the function table does not list this package's own functions")
	}
	for _, fn := range tab.Funcs {
		if strings.HasPrefix(fn.Name, "github.com/cilium/ebpf/rlimit.") {
			t.Fatalf("the binary links %s: cilium/ebpf/rlimit's initialisation creates a BPF map in every process", fn.Name)
		}
	}
}
