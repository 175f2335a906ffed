package runtime

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/shim"
)

// TestGateCoversWASI walks every profile's table against wazero's own list of
// WASI preview 1 functions: a function wazero adds must be given a rule
// before it can be exported, and the table names nothing wazero lacks.
func TestGateCoversWASI(t *testing.T) {
	names, err := wasiFunctions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 46 {
		t.Errorf("wazero exports %d WASI functions; the gate was written for 46: review the new ones", len(names))
	}
	for _, p := range profiles.All() {
		table := shim.For(p)
		for _, n := range names {
			if _, ok := table[n]; !ok {
				t.Errorf("%s: no rule for %s", p.Name, n)
			}
		}
		for _, n := range table.Names() {
			if !slices.Contains(names, n) {
				t.Errorf("%s: rule for %s, which wazero does not implement", p.Name, n)
			}
			if table[n].Why == "" {
				t.Errorf("%s: the rule for %s does not say why", p.Name, n)
			}
		}
	}
}

// call assembles a module whose _start calls one WASI function with zero
// arguments and exits with its result through proc_exit.
func call(name string, params int) []byte {
	i32 := byte(0x7f)
	ps := make([]byte, params)
	for i := range ps {
		ps[i] = i32
	}
	body := []byte{}
	for i := 0; i < params; i++ {
		body = append(body, 0x41, 0x00) // i32.const 0
	}
	body = append(body, 0x10, 0x00) // call 0 (the function under test)
	body = append(body, 0x10, 0x01) // call 1 (proc_exit)
	return testwasm.Assemble(testwasm.Spec{
		Imports: []testwasm.Import{
			{Module: WASIModule, Name: name, Params: ps, Result: []byte{i32}},
			{Module: WASIModule, Name: "proc_exit", Params: []byte{i32}},
		},
		Memory: true, MemoryMin: 1, ExportMemory: true,
		Start: body,
	})
}

func TestGateActions(t *testing.T) {
	run := func(gate shim.Table, mod []byte) (Result, error) {
		return Run(context.Background(), Spec{Module: mod, Name: "g", MemoryPages: 16, WallTime: 10 * time.Second, Gate: gate})
	}
	// Deny: sock_shutdown(fd, how) returns ENOTSUP without touching the host.
	res, err := run(nil, call("sock_shutdown", 2))
	if err != nil || res.ExitCode != uint32(shim.ENOTSUP) {
		t.Errorf("sock_shutdown: %+v %v, want exit %d", res, err, shim.ENOTSUP)
	}
	// Trap: proc_raise ends the run with its code.
	_, err = run(nil, call("proc_raise", 1))
	if codeOf(err) != errcode.HostCallTrapped || !strings.Contains(err.Error(), "proc_raise") {
		t.Errorf("proc_raise: %v", err)
	}
	// Allow: sched_yield returns 0.
	if res, err := run(nil, call("sched_yield", 0)); err != nil || res.ExitCode != 0 {
		t.Errorf("sched_yield: %+v %v", res, err)
	}
	// Refuse: the import is refused before anything runs.
	table := shim.For(production)
	table["sched_yield"] = shim.Rule{Action: shim.Refuse, Why: "test"}
	if _, err := run(table, call("sched_yield", 0)); codeOf(err) != errcode.ModuleImportDenied || !strings.Contains(err.Error(), "sched_yield") {
		t.Errorf("refused import: %v", err)
	}
	// A table that lacks a function refuses it too.
	delete(table, "sched_yield")
	if _, err := run(table, call("sched_yield", 0)); codeOf(err) != errcode.ModuleImportDenied {
		t.Errorf("missing rule: %v", err)
	}
	// Allowing a denied function runs wazero's own implementation again.
	table = shim.For(production)
	table["sock_shutdown"] = shim.Rule{Action: shim.Allow, Why: "test"}
	if res, err := run(table, call("sock_shutdown", 2)); err != nil || res.ExitCode == uint32(shim.ENOTSUP) || res.ExitCode == 0 {
		t.Errorf("sock_shutdown allowed: %+v %v, want wazero's own errno for stdin", res, err)
	}
}
