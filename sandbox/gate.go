package sandbox

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/shim"
)

// gatedWASI compiles the WASI host module as the gate table says: wazero's
// implementation for Allow (amended where wasiFixes says), and in place of
// every other function one that returns its errno (Deny; EBADF first for
// a descriptor that is not open) or ends the run (Trap, and Refuse, which
// no module that passed checkImports can reach). The replacements use the
// stack-based API. Every function that takes or opens a descriptor goes
// through the guest's numbering of them (fdMap: a preopen renumbered
// moves there alone), which costs a length check until a preopen moves;
// the others (clocks, arguments, random) are wazero's own, and pay
// nothing.
//
// lookup, when not nil, is the run's channel to its confined mounts for
// path_filestat_set_times without SYMLINK_FOLLOW (see linkLookup).
//
// watch, when not nil, is told of every call (trace, host-call limit); it is
// compiled into the host functions only then, so a run without it pays
// nothing.
func gatedWASI(ctx context.Context, rt wazero.Runtime, gate shim.Table, watch *callWatch, lookup *linkLookup) (wazero.CompiledModule, error) {
	defaults, err := wasi_snapshot_preview1.NewBuilder(rt).Compile(ctx)
	if err != nil {
		return nil, err
	}
	defs := defaults.ExportedFunctions()
	orig := make(map[string]api.GoModuleFunction, len(defs))
	for name, def := range defs {
		fn, ok := def.GoFunction().(api.GoModuleFunction)
		if !ok {
			return nil, fmt.Errorf("wazero's WASI function %s has no host code to amend", name)
		}
		orig[name] = fn
	}
	st := &fixState{lookup: lookup}
	b := rt.NewHostModuleBuilder(shim.WASIModule)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	for name, def := range defs {
		rule, ok := gate[name]
		if !ok {
			rule = shim.Rule{Action: shim.Refuse}
		}
		var fn api.GoModuleFunction
		in, result := fdParams(def.ParamNames())
		switch rule.Action {
		case shim.Allow:
			fix, ok := wasiFixes[name]
			switch {
			case ok && fix.ownFDs:
				fn = fix.wrap(orig, st)
			case ok:
				fn = remapFDs(st, in, result, fix.wrap(orig, st))
			case len(in) > 0 || result >= 0:
				fn = remapFDs(st, in, result, orig[name])
			default:
				continue
			}
		case shim.Deny:
			errno := uint64(rule.Errno)
			if len(in) > 0 && in[0] == 0 {
				fn = remapFDs(st, in[:1], -1, denyOnFD(orig, errno))
				break
			}
			fn = api.GoModuleFunc(func(_ context.Context, _ api.Module, stack []uint64) { stack[0] = errno })
		default:
			trapped := errcode.Errorf(errcode.HostCallTrapped, "the workload called %s.%s, which its gate traps (%s)", shim.WASIModule, name, rule)
			fn = api.GoModuleFunc(func(context.Context, api.Module, []uint64) { panic(trapped) })
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
func (w *callWatch) After(_ context.Context, mod api.Module, def api.FunctionDefinition, results []uint64) {
	if w.trace == nil {
		return
	}
	ok := len(results) > 0 && uint32(results[0]) == 0
	line := w.call(mod, def, ok)
	if len(results) > 0 {
		line += fmt.Sprintf(" = %d %s", uint32(results[0]), errnoName(results[0]))
	}
	io.WriteString(w.trace, line+"\n")
}

// Abort implements experimental.FunctionListener.
func (w *callWatch) Abort(_ context.Context, mod api.Module, def api.FunctionDefinition, err error) {
	if w.trace != nil {
		io.WriteString(w.trace, w.call(mod, def, false)+" ended the run: "+firstLine(err.Error())+"\n")
	}
}

// TraceBytes bounds the bytes of one path or buffer a trace shows; past
// it the trace shows the first TraceBytes, "..." and the length.
const TraceBytes = 64

// call formats "launch: call name(param=value, ...)" from the saved params;
// i32 values are shown as such (their upper bits are not defined). A path
// (a parameter named path or ending in _path, with its _len after it) is
// shown as the string it names, and the bytes fd_write and fd_pwrite
// write as a string in place of their iovecs; when the call succeeded
// (done), so are the bytes fd_read and fd_pread read and the target
// path_readlink read. Strings are quoted with Go's escapes (every byte
// that is not printable UTF-8 escaped) and cut at TraceBytes.
func (w *callWatch) call(mod api.Module, def api.FunctionDefinition, done bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "launch: call %s(", def.Name())
	names, types := def.ParamNames(), def.ParamTypes()
	var mem api.Memory
	if mod != nil {
		mem = mod.Memory()
	}
	param := func(i int) uint32 {
		if i < len(w.params) {
			return uint32(w.params[i])
		}
		return 0
	}
	fn := def.Name()
	first := true
	for i := 0; i < len(w.params); i++ {
		if !first {
			b.WriteString(", ")
		}
		first = false
		name := ""
		if i < len(names) {
			name = names[i]
		}
		if name != "" {
			b.WriteString(name + "=")
		}
		hasLen := i+1 < len(names) && names[i+1] == name+"_len"
		switch {
		case hasLen && (name == "path" || strings.HasSuffix(name, "_path")):
			b.WriteString(traceString(mem, param(i), param(i+1)))
			i++
			continue
		case hasLen && name == "iovs" && (fn == "fd_write" || fn == "fd_pwrite"):
			b.WriteString(traceIovecs(mem, param(i), param(i+1), math.MaxUint32))
			i++
			continue
		case hasLen && name == "iovs" && done && (fn == "fd_read" || fn == "fd_pread"):
			n, _ := readU32(mem, param(len(w.params)-1))
			b.WriteString(traceIovecs(mem, param(i), param(i+1), n))
			i++
			continue
		case hasLen && name == "buf" && done && fn == "path_readlink":
			n, _ := readU32(mem, param(len(w.params)-1))
			b.WriteString(traceString(mem, param(i), min(n, param(i+1))))
			i++
			continue
		}
		p := w.params[i]
		if i < len(types) && types[i] == api.ValueTypeI32 {
			p = uint64(uint32(p))
		}
		fmt.Fprintf(&b, "%d", p)
	}
	b.WriteString(")")
	return b.String()
}

// readU32 reads a little-endian uint32 of guest memory.
func readU32(mem api.Memory, at uint32) (uint32, bool) {
	if mem == nil {
		return 0, false
	}
	return mem.ReadUint32Le(at)
}

// traceString quotes n bytes of guest memory at ptr, cut at TraceBytes; a
// range outside the memory is shown as such, never read.
func traceString(mem api.Memory, ptr, n uint32) string {
	shown := min(n, TraceBytes)
	var buf []byte
	if mem != nil {
		buf, _ = mem.Read(ptr, shown)
	}
	if buf == nil && shown > 0 {
		return fmt.Sprintf("<%d bytes at %d, outside memory>", n, ptr)
	}
	return quoteCut(buf, n)
}

// traceIovecsMax bounds the iovecs a trace reads of one call.
const traceIovecsMax = 1024

// traceIovecs quotes what cnt iovecs at ptr hold, up to limit bytes in
// all, cut at TraceBytes; past traceIovecs iovecs it says how many more.
func traceIovecs(mem api.Memory, ptr, cnt, limit uint32) string {
	var shown []byte
	var total uint64
	if cnt > traceIovecsMax {
		return traceIovecs(mem, ptr, traceIovecsMax, limit) + fmt.Sprintf(" and %d more iovecs", cnt-traceIovecsMax)
	}
	for k := uint32(0); k < cnt && uint64(total) < uint64(limit); k++ {
		base, ok1 := readU32(mem, ptr+8*k)
		n, ok2 := readU32(mem, ptr+8*k+4)
		if !ok1 || !ok2 {
			return fmt.Sprintf("<%d iovecs at %d, outside memory>", cnt, ptr)
		}
		n = uint32(min(uint64(n), uint64(limit)-total))
		if room := TraceBytes - len(shown); room > 0 {
			part, ok := mem.Read(base, min(n, uint32(room)))
			if !ok {
				return fmt.Sprintf("<%d iovecs at %d, outside memory>", cnt, ptr)
			}
			shown = append(shown, part...)
		}
		total += uint64(n)
	}
	return quoteCut(shown, uint32(min(total, math.MaxUint32)))
}

// quoteCut quotes b, the first bytes of n, marking a cut with "..." and n.
func quoteCut(b []byte, n uint32) string {
	q := strconv.Quote(string(b))
	if uint32(len(b)) < n {
		return fmt.Sprintf("%s... (%d bytes)", q, n)
	}
	return q
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
