package sandbox

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/ampoule-run/ampoule/shim"
)

// gatedRuntime is an interpreter runtime with the gate's WASI instantiated
// in it, closed when the test ends: what a test calling gated functions
// from a hand-written guest needs.
func gatedRuntime(ctx context.Context, tb testing.TB) wazero.Runtime {
	tb.Helper()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	tb.Cleanup(func() { rt.Close(context.Background()) })
	wasi, err := gatedWASI(ctx, rt, shim.Gate(), nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := rt.InstantiateModule(ctx, wasi, wazero.NewModuleConfig()); err != nil {
		tb.Fatal(err)
	}
	return rt
}
