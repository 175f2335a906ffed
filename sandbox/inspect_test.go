package sandbox

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// Hand-made modules, built section by section, so that each test declares
// exactly the counts it means to.

func uleb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func section(id byte, content ...[]byte) []byte {
	c := bytes.Join(content, nil)
	return append(append([]byte{id}, uleb(uint64(len(c)))...), c...)
}

func wasmModule(sections ...[]byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Join(sections, nil)...)
}

// oneFunction is a module of one function () -> () with the given locals
// declarations (already encoded) and instructions (without the final end).
func oneFunction(locals, code []byte) []byte {
	body := append(append(append([]byte{}, locals...), code...), 0x0b)
	return wasmModule(
		section(1, []byte{1, 0x60, 0, 0}),
		section(3, []byte{1, 0}),
		section(10, []byte{1}, uleb(uint64(len(body))), body),
	)
}

// nestedBlocks is a function whose body nests n empty blocks.
func nestedBlocks(n int) []byte {
	code := append(bytes.Repeat([]byte{0x02, 0x40}, n), bytes.Repeat([]byte{0x0b}, n)...)
	return oneFunction([]byte{0}, code)
}

// tableModule declares one funcref table of min entries (and no maximum).
func tableModule(min uint64) []byte {
	return wasmModule(section(4, []byte{1, 0x70, 0}, uleb(min)))
}

// TestCheckModule: each structure limit refuses a module one past it with
// E1028 and accepts one at it; a count the bytes cannot hold is malformed
// (E1011); declared tables, segments and globals count against the memory
// limit (E4001). None of these reach wazero's decoder.
func TestCheckModule(t *testing.T) {
	const mem = 16 << 20
	for _, tc := range []struct {
		name   string
		module []byte
		code   errcode.Code // 0: accepted
	}{
		{"nesting at the limit", nestedBlocks(maxNesting), 0},
		{"nesting past the limit", nestedBlocks(maxNesting + 1), errcode.ModuleTooComplex},
		{"locals at the limit", oneFunction([]byte{1, 0xd0, 0x86, 0x03, 0x7f}, nil), 0}, // 50,000 i32
		{"locals past the limit", oneFunction([]byte{1, 0xd1, 0x86, 0x03, 0x7f}, nil), errcode.ModuleTooComplex},
		{"four billion locals", oneFunction([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f}, nil), errcode.ModuleTooComplex},
		{"locals summed past the limit", oneFunction([]byte{2, 0xa8, 0xc3, 0x01, 0x7f, 0xa9, 0xc3, 0x01, 0x7e}, nil), errcode.ModuleTooComplex},
		{"a table within memory", tableModule(mem / tableEntryBytes / 2), 0},
		{"a table past memory", tableModule(mem/tableEntryBytes + 1), errcode.MemoryLimit},
		{"a table past the entry limit", tableModule(maxTableEntries + 1), errcode.ModuleTooComplex},
		{"tables past memory together", wasmModule(section(4, []byte{2, 0x70, 0}, uleb(mem/tableEntryBytes/2+1), []byte{0x70, 0}, uleb(mem/tableEntryBytes/2))), errcode.MemoryLimit},
		{"functions past the limit", wasmModule(section(3, uleb(maxFunctions+1), make([]byte, maxFunctions+1))), errcode.ModuleTooComplex},
		{"functions claimed beyond the bytes", wasmModule(section(3, uleb(1<<31), []byte{0})), errcode.ModuleInvalid},
		{"a huge element segment claimed", wasmModule(section(9, []byte{1, 0, 0x41, 0, 0x0b}, uleb(0xfffffff), []byte{0, 0, 0})), errcode.ModuleInvalid},
		{"element entries past memory", wasmModule(section(9, []byte{1, 0, 0x41, 0, 0x0b}, uleb(mem/elemEntryBytes+1), make([]byte, mem/elemEntryBytes+1))), errcode.MemoryLimit},
		{"a huge data segment claimed", wasmModule(section(11, []byte{1, 1}, uleb(0xffffffff), []byte("abc"))), errcode.ModuleInvalid},
		{"data past memory", wasmModule(section(11, []byte{1, 1}, uleb(mem+1), make([]byte, mem+1))), errcode.MemoryLimit},
		{"globals past the limit", wasmModule(section(6, uleb(maxGlobals+1), bytes.Repeat([]byte{0x7f, 0, 0x41, 0, 0x0b}, maxGlobals+1))), errcode.ModuleTooComplex},
		{"types claimed beyond the bytes", wasmModule(section(1, uleb(0xffffffff))), errcode.ModuleInvalid},
		{"a body past the size limit", wasmModule(section(1, []byte{1, 0x60, 0, 0}), section(3, []byte{1, 0}), section(10, []byte{1}, uleb(maxBodyBytes+1), make([]byte, maxBodyBytes+1))), errcode.ModuleTooComplex},
		{"a br_table claiming more targets than bytes", oneFunction([]byte{0}, append([]byte{0x41, 0, 0x0e}, uleb(1<<30)...)), errcode.ModuleInvalid},
		{"names claimed beyond the bytes", wasmModule(section(0, []byte{4}, []byte("name"), []byte{1, 5}, uleb(0xfffffff), []byte{0})), errcode.ModuleInvalid},
		{"an unknown opcode", oneFunction([]byte{0}, []byte{0xfe, 0}), errcode.ModuleInvalid},
		{"a body going on after its end", oneFunction([]byte{0}, []byte{0x0b, 0x01}), errcode.ModuleInvalid},
		{"a truncated section", wasmModule([]byte{1, 10, 1}), errcode.ModuleInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkModule(tc.module, mem)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if got := errcode.From(err).Code; err == nil || got != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
		})
	}
}

// TestCheckModuleAcceptsRealModules: every module the repository builds or
// assembles passes the structure limits, with the memory its manifest gives.
func TestCheckModuleAcceptsRealModules(t *testing.T) {
	for _, ex := range []string{"hello", "files", "compute", "crash", "leak", "notebook"} {
		b := testwasm.Module(t, ex)
		s, err := inspect(b)
		if err != nil {
			t.Errorf("%s: %v", ex, err)
			continue
		}
		if s.Functions < 1000 || s.MaxNesting < 100 || s.TableEntries == 0 || s.DataBytes == 0 {
			t.Errorf("%s: the shape %+v misses what a Go module has", ex, *s)
		}
		if err := checkModule(b, 256<<20); err != nil {
			t.Errorf("%s: %v", ex, err)
		}
	}
	for _, h := range testwasm.HostileCorpus(t) {
		_, err := inspect(h.Wasm)
		var tc *tooComplex
		switch refused := h.Expect == errcode.ModuleTooComplex; {
		case refused && !errors.As(err, &tc):
			t.Errorf("%s: %v, want a structure limit", h.Name, err)
		case !refused && err != nil:
			t.Errorf("%s: %v", h.Name, err)
		}
	}
}

// FuzzInspect: inspect never panics, and what it reports stays within the
// limits it enforces.
func FuzzInspect(f *testing.F) {
	f.Add(nestedBlocks(3))
	f.Add(tableModule(10))
	f.Add(oneFunction([]byte{1, 2, 0x7f}, []byte{0x41, 1, 0x04, 0x40, 0x0b, 0x0e, 1, 0, 0, 0xfd, 12}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := inspect(b)
		if err != nil {
			return
		}
		if s.MaxNesting > maxNesting || s.MaxLocals > maxLocals || s.MaxBody > maxBodyBytes || s.Functions > maxFunctions ||
			s.Globals > maxGlobals || s.ElemEntries > maxElemEntries || s.Tables > maxTables || s.DataBytes > uint64(len(b)) {
			t.Fatalf("accepted past a limit: %+v", *s)
		}
	})
}

// BenchmarkInspect: what checking a Go module (the hello example, 2.6 MB)
// adds to every run, cached or not.
func BenchmarkInspect(b *testing.B) {
	m := testwasm.Module(b, "hello")
	b.SetBytes(int64(len(m)))
	for b.Loop() {
		if _, err := inspect(m); err != nil {
			b.Fatal(err)
		}
	}
}
