package sandbox

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/shim"
)

// gatedWASI compiles the WASI host module as the gate table says: wazero's
// implementation for Allow, and in place of every other function one that
// returns its errno (Deny) or ends the run (Trap, and Refuse, which no
// module that passed checkImports can reach). The replacements use the
// stack-based API and allocate nothing per call.
//
// watch, when not nil, is told of every call (trace, host-call limit); it is
// compiled into the host functions only then, so a run without it pays
// nothing.
func gatedWASI(ctx context.Context, rt wazero.Runtime, gate shim.Table, watch *callWatch) (wazero.CompiledModule, error) {
	defaults, err := wasi_snapshot_preview1.NewBuilder(rt).Compile(ctx)
	if err != nil {
		return nil, err
	}
	defs := defaults.ExportedFunctions()
	b := rt.NewHostModuleBuilder(shim.WASIModule)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	for name, def := range defs {
		rule, ok := gate[name]
		if !ok {
			rule = shim.Rule{Action: shim.Refuse}
		}
		var fn api.GoModuleFunc
		switch rule.Action {
		case shim.Allow:
			continue
		case shim.Deny:
			errno := uint64(rule.Errno)
			fn = func(_ context.Context, _ api.Module, stack []uint64) { stack[0] = errno }
		default:
			trapped := errcode.Errorf(errcode.HostCallTrapped, "the workload called %s.%s, which its gate traps (%s)", shim.WASIModule, name, rule)
			fn = func(context.Context, api.Module, []uint64) { panic(trapped) }
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(fn, def.ParamTypes(), def.ResultTypes()).
			WithParameterNames(def.ParamNames()...).
			Export(name)
	}
	if watch != nil {
		ctx = experimental.WithFunctionListenerFactory(ctx, watch)
	}
	return b.Compile(ctx)
}

// callWatch counts host calls against a bound and traces them. wazero calls
// a module's host functions from the guest's one goroutine, and host
// functions do not nest, so it needs no lock.
type callWatch struct {
	max    uint64 // 0: no bound
	n      uint64
	trace  io.Writer
	hit    func(errcode.Code)
	params []uint64
}

// NewFunctionListener implements experimental.FunctionListenerFactory.
func (w *callWatch) NewFunctionListener(api.FunctionDefinition) experimental.FunctionListener {
	return w
}

// Before implements experimental.FunctionListener.
func (w *callWatch) Before(_ context.Context, _ api.Module, def api.FunctionDefinition, params []uint64, _ experimental.StackIterator) {
	w.n++
	if w.max > 0 && w.n > w.max {
		err := errcode.Errorf(errcode.HostCallLimit, "host call %d (%s) is past the limit of %d", w.n, def.Name(), w.max)
		w.hit(errcode.HostCallLimit)
		panic(err)
	}
	if w.trace != nil {
		w.params = append(w.params[:0], params...)
	}
}

// After implements experimental.FunctionListener.
func (w *callWatch) After(_ context.Context, _ api.Module, def api.FunctionDefinition, results []uint64) {
	if w.trace == nil {
		return
	}
	line := w.call(def)
	if len(results) > 0 {
		line += fmt.Sprintf(" = %d %s", uint32(results[0]), errnoName(results[0]))
	}
	io.WriteString(w.trace, line+"\n")
}

// Abort implements experimental.FunctionListener.
func (w *callWatch) Abort(_ context.Context, _ api.Module, def api.FunctionDefinition, err error) {
	if w.trace != nil {
		io.WriteString(w.trace, w.call(def)+" ended the run: "+firstLine(err.Error())+"\n")
	}
}

// call formats "launch: call name(param=value, ...)" from the saved params;
// i32 values are shown as such (their upper bits are not defined).
func (w *callWatch) call(def api.FunctionDefinition) string {
	var b strings.Builder
	fmt.Fprintf(&b, "launch: call %s(", def.Name())
	names, types := def.ParamNames(), def.ParamTypes()
	for i, p := range w.params {
		if i > 0 {
			b.WriteString(", ")
		}
		if i < len(names) && names[i] != "" {
			b.WriteString(names[i] + "=")
		}
		if i < len(types) && types[i] == api.ValueTypeI32 {
			p = uint64(uint32(p))
		}
		fmt.Fprintf(&b, "%d", p)
	}
	b.WriteString(")")
	return b.String()
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// errnoName names a WASI function's result for a trace, from shim's one
// table of WASI errnos: "(success)", "(ENOENT)", "(errno N)".
func errnoName(result uint64) string {
	return "(" + shim.ErrnoName(uint32(result)) + ")"
}

// wasiFunctions lists the functions of wazero's WASI implementation, for the
// test that keeps the gate table complete.
func wasiFunctions(ctx context.Context) ([]string, error) {
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	c, err := wasi_snapshot_preview1.NewBuilder(rt).Compile(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for n := range c.ExportedFunctions() {
		names = append(names, n)
	}
	return names, nil
}
