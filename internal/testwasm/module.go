package testwasm

// Import is one function import of a hand-made module.
type Import struct {
	Module, Name   string
	Params, Result []byte // value types: 0x7f i32, 0x7e i64
}

// Spec describes a hand-made module: a _start function with the given body
// (instructions without the final end), some function imports, and an
// optional memory.
type Spec struct {
	Imports      []Import
	Memory       bool
	MemoryMin    uint32
	ExportMemory bool
	Start        []byte
}

// Assemble encodes s as a WebAssembly binary.
func Assemble(s Spec) []byte {
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	section := func(id byte, payload []byte) {
		out = append(out, id)
		out = append(out, uleb(uint32(len(payload)))...)
		out = append(out, payload...)
	}
	// Types: one per import, then () -> () for _start.
	var types []byte
	types = append(types, uleb(uint32(len(s.Imports)+1))...)
	for _, im := range s.Imports {
		types = append(types, 0x60)
		types = append(types, vec(im.Params)...)
		types = append(types, vec(im.Result)...)
	}
	types = append(types, 0x60, 0x00, 0x00)
	section(1, types)
	if len(s.Imports) > 0 {
		imports := uleb(uint32(len(s.Imports)))
		for i, im := range s.Imports {
			imports = append(imports, name(im.Module)...)
			imports = append(imports, name(im.Name)...)
			imports = append(imports, 0x00)
			imports = append(imports, uleb(uint32(i))...)
		}
		section(2, imports)
	}
	section(3, append([]byte{0x01}, uleb(uint32(len(s.Imports)))...))
	if s.Memory {
		section(5, append([]byte{0x01, 0x00}, uleb(s.MemoryMin)...))
	}
	exports := []byte{0x01}
	if s.Memory && s.ExportMemory {
		exports[0] = 0x02
	}
	exports = append(exports, name("_start")...)
	exports = append(exports, 0x00)
	exports = append(exports, uleb(uint32(len(s.Imports)))...)
	if s.Memory && s.ExportMemory {
		exports = append(exports, name("memory")...)
		exports = append(exports, 0x02, 0x00)
	}
	section(7, exports)
	body := append([]byte{0x00}, s.Start...) // no locals
	body = append(body, 0x0b)
	code := []byte{0x01}
	code = append(code, uleb(uint32(len(body)))...)
	code = append(code, body...)
	section(10, code)
	return out
}

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

func vec(types []byte) []byte { return append(uleb(uint32(len(types))), types...) }

func name(s string) []byte { return append(uleb(uint32(len(s))), s...) }

// Unreachable is the body of a _start that traps at once.
var Unreachable = []byte{0x00}

// Loop is the body of a _start that spins forever.
var Loop = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b} // loop br 0 end
