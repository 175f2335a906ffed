package runtime

import (
	"context"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/shim"
)

// production is the profile whose gate applies when a Spec names none.
var production = func() profiles.Profile { p, _ := profiles.Get("production"); return p }()

// gatedWASI compiles the WASI host module as the gate table says: wazero's
// implementation for Allow, and in place of every other function one that
// returns its errno (Deny) or ends the run (Trap, and Refuse, which no
// module that passed checkImports can reach). The replacements use the
// stack-based API and allocate nothing per call.
func gatedWASI(ctx context.Context, rt wazero.Runtime, gate shim.Table) (wazero.CompiledModule, error) {
	defaults, err := wasi_snapshot_preview1.NewBuilder(rt).Compile(ctx)
	if err != nil {
		return nil, err
	}
	defs := defaults.ExportedFunctions()
	b := rt.NewHostModuleBuilder(WASIModule)
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
			trapped := errcode.Errorf(errcode.HostCallTrapped, "the workload called %s.%s, which its gate traps (%s)", WASIModule, name, rule)
			fn = func(context.Context, api.Module, []uint64) { panic(trapped) }
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(fn, def.ParamTypes(), def.ResultTypes()).
			WithParameterNames(def.ParamNames()...).
			Export(name)
	}
	return b.Compile(ctx)
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
