package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/shim"
)

// TestGateCoversWASI walks the gate against wazero's own list of WASI
// preview 1 functions: a function wazero adds must be given a rule before
// it can be exported, and the table names nothing wazero lacks. Every
// profile gets that same table (the deprecated For included), and each
// call a fresh one.
func TestGateCoversWASI(t *testing.T) {
	names, err := wasiFunctions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 46 {
		t.Errorf("wazero exports %d WASI functions; the gate was written for 46: review the new ones", len(names))
	}
	table := shim.Gate()
	for _, n := range names {
		if _, ok := table[n]; !ok {
			t.Errorf("no rule for %s", n)
		}
	}
	for _, n := range table.Names() {
		if !slices.Contains(names, n) {
			t.Errorf("rule for %s, which wazero does not implement", n)
		}
		if table[n].Why == "" {
			t.Errorf("the rule for %s does not say why", n)
		}
	}
	table["sched_yield"] = shim.Rule{Action: shim.Refuse, Why: "test"}
	if shim.Gate()["sched_yield"].Action != shim.Allow {
		t.Error("a change to one table reached the next one Gate returned")
	}
}

// call assembles a module whose _start calls one WASI function with zero
// arguments and exits with its result through proc_exit.
func call(name string, params int) []byte {
	return callWith(name, make([]byte, params)...)
}

// callWith is call with the given i32 arguments, each below 64.
func callWith(name string, args ...byte) []byte {
	i32 := byte(0x7f)
	ps := make([]byte, len(args))
	for i := range ps {
		ps[i] = i32
	}
	body := []byte{}
	for _, a := range args {
		body = append(body, 0x41, a) // i32.const a (a one-byte LEB128 below 64)
	}
	body = append(body, 0x10, 0x00) // call 0 (the function under test)
	body = append(body, 0x10, 0x01) // call 1 (proc_exit)
	return testwasm.Assemble(testwasm.Spec{
		Imports: []testwasm.Import{
			{Module: shim.WASIModule, Name: name, Params: ps, Result: []byte{i32}},
			{Module: shim.WASIModule, Name: "proc_exit", Params: []byte{i32}},
		},
		Memory: true, MemoryMin: 1, ExportMemory: true,
		Start: body,
	})
}

func TestAmpouleModuleIsRefused(t *testing.T) {
	for _, name := range []string{"log", "secret", "seal", "attest", "exec"} {
		mod := testwasm.Assemble(testwasm.Spec{Imports: []testwasm.Import{{Module: shim.AmpouleModule, Name: name}}})
		_, err := Run(context.Background(), Spec{Module: mod, Name: "a", MemoryPages: 16, WallTime: 10 * time.Second})
		if codeOf(err) != errcode.ModuleImportDenied || !strings.Contains(err.Error(), "ampoule."+name) {
			t.Errorf("ampoule.%s: %v", name, err)
		}
	}
}

func TestGateActions(t *testing.T) {
	run := func(gate shim.Table, mod []byte) (Result, error) {
		return Run(context.Background(), Spec{Module: mod, Name: "g", MemoryPages: 16, WallTime: 10 * time.Second, Gate: gate})
	}
	// Deny: sock_shutdown(fd, how) on stdin, open but no socket, is
	// ENOTSOCK, and on a descriptor nothing has open EBADF, as on a host
	// without sockets; no socket code runs.
	res, err := run(nil, call("sock_shutdown", 2))
	if err != nil || res.ExitCode != uint32(shim.ENOTSOCK) {
		t.Errorf("sock_shutdown on stdin: %+v %v, want exit %d", res, err, shim.ENOTSOCK)
	}
	res, err = run(nil, callWith("sock_shutdown", 9, 0))
	if err != nil || res.ExitCode != uint32(shim.EBADF) {
		t.Errorf("sock_shutdown on fd 9: %+v %v, want exit %d", res, err, shim.EBADF)
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
	table := shim.Gate()
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
	table = shim.Gate()
	table["sock_shutdown"] = shim.Rule{Action: shim.Allow, Why: "test"}
	if res, err := run(table, call("sock_shutdown", 2)); err != nil || res.ExitCode == uint32(shim.ENOTSOCK) || res.ExitCode == 0 {
		t.Errorf("sock_shutdown allowed: %+v %v, want wazero's own errno for stdin", res, err)
	}
}

func TestFileLimits(t *testing.T) {
	out := t.TempDir()
	s, _, stderr := spec(t, "crash", "fds", "/out")
	s.Dirs = []Mount{{Host: out, Guest: "/out", Writable: true}}
	s.OpenFiles = 10
	if _, err := Run(context.Background(), s); codeOf(err) != errcode.OpenFilesLimit {
		t.Errorf("fds: %v (%s)", err, stderr)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 10 {
		t.Errorf("%d files made, want exactly the limit of 10", len(entries))
	}

	// Files that are closed stop counting.
	churn := t.TempDir()
	s, stdout, stderr := spec(t, "crash", "churn", "/c")
	s.Dirs = []Mount{{Host: churn, Guest: "/c", Writable: true}}
	s.OpenFiles = 4
	if _, err := Run(context.Background(), s); err != nil || !strings.Contains(stdout.String(), "churned") {
		t.Errorf("churn: %v %s", err, stderr)
	}

	s, _, stderr = spec(t, "crash", "fill", "/out")
	s.Dirs = []Mount{{Host: out, Guest: "/out", Writable: true}}
	s.FileOutputBytes = 5 << 20
	if _, err := Run(context.Background(), s); codeOf(err) != errcode.FileOutputLimit {
		t.Errorf("fill: %v (%s)", err, stderr)
	}
	if st, err := os.Stat(filepath.Join(out, "fill.bin")); err != nil || st.Size() > 5<<20 {
		t.Errorf("fill.bin: %v, %d bytes, want at most 5 MiB", err, st.Size())
	}
}

func TestHostCallLimitAndTrace(t *testing.T) {
	s, _, _ := spec(t, "hello")
	s.HostCalls = 5
	if _, err := Run(context.Background(), s); codeOf(err) != errcode.HostCallLimit {
		t.Errorf("5 host calls: %v", err)
	}
	var trace testwasm.SyncBuffer
	s, stdout, _ := spec(t, "hello")
	s.Trace = &trace
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"launch: call args_sizes_get(", "launch: call fd_write(fd=1, ", ") = 0 (success)\n", "launch: call proc_exit(rval=0) ended the run"} {
		if !strings.Contains(trace.String(), want) {
			t.Errorf("trace lacks %q:\n%s", want, trace.String())
		}
	}
	if !strings.Contains(stdout.String(), "Hello") {
		t.Error("tracing changed the run")
	}
}

// TestTraceNamesWazerosErrnos: the numbers wazero's own WASI functions
// return are the ones shim's errno table names, and a trace names them
// from it.
func TestTraceNamesWazerosErrnos(t *testing.T) {
	table := shim.Gate()
	table["sock_shutdown"] = shim.Rule{Action: shim.Allow, Why: "test"}
	for _, c := range []struct {
		name string
		args []byte
		want shim.Errno
		line string
	}{
		// stdin is one of wazero's preopens, which it never moves.
		{"fd_renumber", []byte{0, 1}, shim.ENOTSUP, "launch: call fd_renumber(fd=0, to=1) = 58 (ENOTSUP)\n"},
		{"sock_shutdown", []byte{0, 0}, shim.EBADF, "launch: call sock_shutdown(fd=0, how=0) = 8 (EBADF)\n"},
		{"fd_close", []byte{0}, shim.ESUCCESS, "launch: call fd_close(fd=0) = 0 (success)\n"},
	} {
		var trace testwasm.SyncBuffer
		res, err := Run(context.Background(), Spec{Module: callWith(c.name, c.args...), Name: "e", MemoryPages: 16, WallTime: 10 * time.Second, Gate: table, Trace: &trace})
		if err != nil || res.ExitCode != uint32(c.want) {
			t.Errorf("%s: %+v %v, want exit %d (%v)", c.name, res, err, c.want, c.want)
		}
		if !strings.Contains(trace.String(), c.line) {
			t.Errorf("%s: the trace lacks %q:\n%s", c.name, c.line, trace.String())
		}
	}
}

// TestWASIModuleIsWazeros: the one name of the WASI module, shim's, is the
// one wazero's implementation registers and the error registry's hint names.
func TestWASIModuleIsWazeros(t *testing.T) {
	if shim.WASIModule != wasi_snapshot_preview1.ModuleName {
		t.Errorf("shim.WASIModule is %q, wazero's module %q", shim.WASIModule, wasi_snapshot_preview1.ModuleName)
	}
	if !strings.Contains(errcode.ModuleImportDenied.Hint(), shim.WASIModule+" functions") {
		t.Errorf("the hint of %v does not name %s: %q", errcode.ModuleImportDenied, shim.WASIModule, errcode.ModuleImportDenied.Hint())
	}
}

// TestWASIFixesAmendGatedFunctions: every amendment is of a function
// wazero implements and the gate lets run, and names why.
func TestWASIFixesAmendGatedFunctions(t *testing.T) {
	names, err := wasiFunctions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gate := shim.Gate()
	for name, fix := range wasiFixes {
		if !slices.Contains(names, name) {
			t.Errorf("%s is amended but wazero has no such function", name)
		}
		if gate[name].Action != shim.Allow {
			t.Errorf("%s is amended but the gate's rule is %v", name, gate[name])
		}
		if fix.why == "" || fix.wrap == nil {
			t.Errorf("%s: an amendment without its reason or code", name)
		}
	}
}
