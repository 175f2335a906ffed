package sandbox

import (
	"errors"
	"fmt"

	"github.com/ampoule-run/ampoule/errcode"
)

// Structure limits a module must keep before it is compiled. wazero's decoder
// sizes its allocations from the counts a module declares and its compiler
// takes time superlinear in a function's nesting depth, so a small hostile
// binary could otherwise make the runner allocate gigabytes or compile for
// minutes. Most values are the implementation limits the WebAssembly JS API
// sets for every browser engine, which real toolchains stay within; the
// nesting depth is Ampoule's own (see maxNesting).
const (
	maxTypes        = 1_000_000
	maxParams       = 1_000
	maxResults      = 1_000
	maxImports      = 100_000
	maxExports      = 100_000
	maxFunctions    = 1_000_000
	maxTables       = 100_000
	maxTableEntries = 10_000_000 // a table's declared initial size
	maxGlobals      = 1_000_000
	maxElemSegments = 10_000_000
	maxElemEntries  = 10_000_000 // in one segment
	maxDataSegments = 100_000
	maxBodyBytes    = 7_654_321
	maxLocals       = 50_000
	maxBrTable      = 1_000_000 // br_table targets (the JS API's limit on a br_table, too)
	// maxNesting bounds blocks, loops and ifs open at once in a function.
	// Go's compiler nests a block per resumption point of a function: the
	// deepest function of Go's own encoding/json tests nests 1,402 deep.
	// wazero's compile time grows with the square of the depth: one function
	// nested 5,000 deep compiles in about 0.5 s here, 20,000 deep in 13 s.
	maxNesting = 5_000
)

// Bytes counted at instantiation for what a module declares outside its
// linear memory: wazero keeps a table entry in a word, an element segment's
// entry as a constant expression of 32 bytes, and a global in an instance of
// about 64.
const (
	tableEntryBytes = 8
	elemEntryBytes  = 32
	globalBytes     = 64
)

// moduleShape is what inspect learns of a module: enough to bound what its
// instantiation costs before wazero decodes it.
type moduleShape struct {
	Functions    int    // imported and defined
	Tables       int    // imported and defined
	TableEntries uint64 // the tables' initial sizes, together
	ElemEntries  uint64 // every element segment's entries, together
	Globals      int
	DataBytes    uint64 // every data segment's bytes, together
	MaxNesting   int    // the deepest nesting of any function body
	MaxLocals    uint64 // the most locals of any function
	MaxBody      int    // the largest function body, in bytes
	// start says the module has a start section: instantiating it runs
	// its code. Never kept with the verdict: hasStartSection decides.
	start bool
}

// footprint is what instantiating the module costs outside linear memory,
// in bytes, at the sizes it declares.
func (s *moduleShape) footprint() uint64 {
	return s.TableEntries*tableEntryBytes + s.ElemEntries*elemEntryBytes + uint64(s.Globals)*globalBytes + s.DataBytes
}

// errMalformed is a module inspect cannot read; wazero would refuse it too.
var errMalformed = errors.New("malformed module")

// tooComplex is a module beyond a structure limit.
type tooComplex struct{ what string }

func (e *tooComplex) Error() string { return e.what }

// checkModule inspects a module before it is compiled and refuses, with a
// registered code, one that breaks a structure limit (E1028), that cannot
// be read (E1011), or whose declared tables, segments and globals would
// cost more than memLimit bytes at instantiation (E4001). memLimit zero
// means no memory bound.
func checkModule(module []byte, memLimit uint64) error {
	s, err := inspected(module)
	if err != nil {
		return err
	}
	return checkShape(s, memLimit)
}

// inspected is inspect with its errors registered.
func inspected(module []byte) (*moduleShape, error) {
	s, err := inspect(module)
	var tc *tooComplex
	switch {
	case errors.As(err, &tc):
		return nil, errcode.Errorf(errcode.ModuleTooComplex, "the module is beyond what the runtime compiles: %v", err)
	case err != nil:
		return nil, errcode.Errorf(errcode.ModuleInvalid, "decoding the module: %v", err)
	}
	return s, nil
}

// checkShape judges a module's shape against its memory limit.
func checkShape(s *moduleShape, memLimit uint64) error {
	if memLimit > 0 && s.footprint() > memLimit {
		return errcode.Errorf(errcode.MemoryLimit, "the module's tables (%d entries), element segments (%d entries), globals (%d) and data segments (%d bytes) need %d bytes at instantiation, above its memory limit of %d",
			s.TableEntries, s.ElemEntries, s.Globals, s.DataBytes, s.footprint(), memLimit)
	}
	return nil
}

// inspect reads a module's sections, checking every count it declares
// against the bytes that follow and against the structure limits. It reads
// every instruction of every function body (to find the nesting depth) but
// validates nothing wazero validates: a module inspect accepts may still be
// refused by wazero. It never panics and allocates nothing in proportion to
// a declared count.
func inspect(module []byte) (*moduleShape, error) {
	r := &reader{b: module}
	if len(module) < 8 || string(module[:8]) != "\x00asm\x01\x00\x00\x00" {
		return nil, fmt.Errorf("%w: no WebAssembly header", errMalformed)
	}
	r.off = 8
	s := &moduleShape{}
	var importedFuncs, definedFuncs uint32
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.sub(size)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		switch id {
		case 0:
			err = customSection(body)
		case 1:
			err = typeSection(body)
		case 2:
			importedFuncs, err = importSection(body, s)
		case 3:
			definedFuncs, err = vecCount(body, maxFunctions, "functions")
			if err == nil {
				for i := uint32(0); i < definedFuncs && err == nil; i++ {
					_, err = body.u32()
				}
			}
		case 4:
			err = tableSection(body, s)
		case 5:
			err = memorySection(body)
		case 6:
			err = globalSection(body, s)
		case 7:
			err = exportSection(body)
		case 8:
			_, err = body.u32()
			s.start = true
		case 9:
			err = elemSection(body, s)
		case 10:
			err = codeSection(body, s)
		case 11:
			err = dataSection(body, s)
		case 12:
			var n uint32
			if n, err = body.u32(); err == nil && n > maxDataSegments {
				err = &tooComplex{fmt.Sprintf("%d data segments, above the limit of %d", n, maxDataSegments)}
			}
		default:
			err = fmt.Errorf("%w: unknown section id %d", errMalformed, id)
		}
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		if id != 0 && !body.done() {
			return nil, fmt.Errorf("section %d: %w: %d bytes left over", id, errMalformed, len(body.b)-body.off)
		}
	}
	if n := uint64(importedFuncs) + uint64(definedFuncs); n > maxFunctions {
		return nil, &tooComplex{fmt.Sprintf("%d functions, above the limit of %d", n, maxFunctions)}
	}
	s.Functions = int(importedFuncs + definedFuncs)
	return s, nil
}

// hasStartSection reports whether module has a start section, whose
// function instantiating the module runs. It reads only the section
// headers; a module it cannot read is taken to have one, so that nothing
// of it runs early (wazero refuses such a module anyway).
func hasStartSection(module []byte) bool {
	if len(module) < 8 {
		return true
	}
	r := &reader{b: module, off: 8}
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return true
		}
		size, err := r.u32()
		if err != nil {
			return true
		}
		if err := r.skip(uint64(size)); err != nil {
			return true
		}
		if id == 8 {
			return true
		}
	}
	return false
}

// reader reads a module's bytes; every read is bounds-checked.
type reader struct {
	b   []byte
	off int
}

var errTruncated = fmt.Errorf("%w: truncated", errMalformed)

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) skip(n uint64) error {
	if n > uint64(r.left()) {
		return errTruncated
	}
	r.off += int(n)
	return nil
}

// sub returns a reader of the next n bytes and skips them.
func (r *reader) sub(n uint32) (*reader, error) {
	start := r.off
	if err := r.skip(uint64(n)); err != nil {
		return nil, err
	}
	return &reader{b: r.b[start:r.off]}, nil
}

// leb reads an unsigned LEB128 number of at most maxBytes bytes whose value
// fits in bits.
func (r *reader) leb(maxBytes int, bits uint) (uint64, error) {
	var v uint64
	for i := 0; i < maxBytes; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << (7 * uint(i))
		if c&0x80 == 0 {
			if bits < 64 && v>>bits != 0 {
				return 0, fmt.Errorf("%w: a number above %d bits", errMalformed, bits)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: a number longer than %d bytes", errMalformed, maxBytes)
}

func (r *reader) u32() (uint32, error) {
	if r.off < len(r.b) && r.b[r.off] < 0x80 { // one byte, most of them
		r.off++
		return uint32(r.b[r.off-1]), nil
	}
	v, err := r.leb(5, 32)
	return uint32(v), err
}

// sleb skips a signed LEB128 number of at most maxBytes bytes.
func (r *reader) sleb(maxBytes int) error {
	if r.off < len(r.b) && r.b[r.off] < 0x80 {
		r.off++
		return nil
	}
	for i := 0; i < maxBytes; i++ {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: a number longer than %d bytes", errMalformed, maxBytes)
}

// name skips a name (a byte vector).
func (r *reader) name() error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	return r.skip(uint64(n))
}

// vecCount reads a vector's length, which may be no more than the bytes
// left (every element takes one at least) nor than limit.
func vecCount(r *reader, limit uint64, what string) (uint32, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n) > uint64(r.left()) {
		return 0, fmt.Errorf("%w: %d %s declared in %d bytes", errMalformed, n, what, r.left())
	}
	if uint64(n) > limit {
		return 0, &tooComplex{fmt.Sprintf("%d %s, above the limit of %d", n, what, limit)}
	}
	return n, nil
}

func isValType(c byte) bool {
	switch c {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		return true
	}
	return false
}

func (r *reader) valType() error {
	c, err := r.byte()
	if err != nil {
		return err
	}
	if !isValType(c) {
		return fmt.Errorf("%w: value type %#x", errMalformed, c)
	}
	return nil
}

// limits reads a table's or memory's limits.
func (r *reader) limits() (min uint32, err error) {
	flag, err := r.byte()
	if err != nil {
		return 0, err
	}
	if flag > 3 {
		return 0, fmt.Errorf("%w: limits flag %#x", errMalformed, flag)
	}
	if min, err = r.u32(); err != nil {
		return 0, err
	}
	if flag&1 != 0 {
		_, err = r.u32()
	}
	return min, err
}

func (r *reader) tableType(s *moduleShape) error {
	if err := r.valType(); err != nil {
		return err
	}
	min, err := r.limits()
	if err != nil {
		return err
	}
	if min > maxTableEntries {
		return &tooComplex{fmt.Sprintf("a table of %d entries, above the limit of %d", min, maxTableEntries)}
	}
	s.Tables++
	if s.Tables > maxTables {
		return &tooComplex{fmt.Sprintf("more than %d tables", maxTables)}
	}
	s.TableEntries += uint64(min)
	return nil
}

func customSection(r *reader) error {
	n, err := r.u32()
	if err != nil {
		return err
	}
	start := r.off
	if err := r.skip(uint64(n)); err != nil {
		return err
	}
	if string(r.b[start:r.off]) != "name" {
		r.off = len(r.b)
		return nil
	}
	// wazero decodes the name section, sizing maps from its counts.
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return err
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		sub, err := r.sub(size)
		if err != nil {
			return err
		}
		switch id {
		case 1: // function names: vec(index name)
			err = nameMap(sub)
		case 2: // local names: vec(index vec(index name))
			var n uint32
			if n, err = vecCount(sub, maxFunctions, "local name maps"); err == nil {
				for i := uint32(0); i < n && err == nil; i++ {
					if _, err = sub.u32(); err == nil {
						err = nameMap(sub)
					}
				}
			}
		}
		if err != nil {
			return fmt.Errorf("name section: %w", err)
		}
	}
	return nil
}

func nameMap(r *reader) error {
	n, err := vecCount(r, maxFunctions, "names")
	for i := uint32(0); i < n && err == nil; i++ {
		if _, err = r.u32(); err == nil {
			err = r.name()
		}
	}
	return err
}

func typeSection(r *reader) error {
	n, err := vecCount(r, maxTypes, "types")
	for i := uint32(0); i < n && err == nil; i++ {
		var form byte
		if form, err = r.byte(); err != nil {
			break
		}
		if form != 0x60 {
			return fmt.Errorf("%w: type form %#x", errMalformed, form)
		}
		for _, lim := range []struct {
			max  uint64
			what string
		}{{maxParams, "parameters"}, {maxResults, "results"}} {
			var k uint32
			if k, err = vecCount(r, lim.max, lim.what); err != nil {
				return err
			}
			for j := uint32(0); j < k; j++ {
				if err = r.valType(); err != nil {
					return err
				}
			}
		}
	}
	return err
}

func importSection(r *reader, s *moduleShape) (funcs uint32, err error) {
	n, err := vecCount(r, maxImports, "imports")
	for i := uint32(0); i < n && err == nil; i++ {
		if err = r.name(); err != nil {
			break
		}
		if err = r.name(); err != nil {
			break
		}
		var kind byte
		if kind, err = r.byte(); err != nil {
			break
		}
		switch kind {
		case 0:
			_, err = r.u32()
			funcs++
		case 1:
			err = r.tableType(s)
		case 2:
			_, err = r.limits()
		case 3:
			if err = r.valType(); err == nil {
				_, err = r.byte()
				s.Globals++
			}
		default:
			err = fmt.Errorf("%w: import kind %#x", errMalformed, kind)
		}
	}
	return funcs, err
}

func tableSection(r *reader, s *moduleShape) error {
	n, err := vecCount(r, maxTables, "tables")
	for i := uint32(0); i < n && err == nil; i++ {
		err = r.tableType(s)
	}
	return err
}

func memorySection(r *reader) error {
	n, err := vecCount(r, 1, "memories")
	for i := uint32(0); i < n && err == nil; i++ {
		_, err = r.limits()
	}
	return err
}

func globalSection(r *reader, s *moduleShape) error {
	n, err := vecCount(r, maxGlobals, "globals")
	for i := uint32(0); i < n && err == nil; i++ {
		if err = r.valType(); err != nil {
			break
		}
		if _, err = r.byte(); err != nil {
			break
		}
		_, err = r.expr(0)
	}
	s.Globals += int(n)
	if err == nil && s.Globals > maxGlobals {
		err = &tooComplex{fmt.Sprintf("%d globals, above the limit of %d", s.Globals, maxGlobals)}
	}
	return err
}

func exportSection(r *reader) error {
	n, err := vecCount(r, maxExports, "exports")
	for i := uint32(0); i < n && err == nil; i++ {
		if err = r.name(); err != nil {
			break
		}
		if _, err = r.byte(); err != nil {
			break
		}
		_, err = r.u32()
	}
	return err
}

func elemSection(r *reader, s *moduleShape) error {
	n, err := vecCount(r, maxElemSegments, "element segments")
	for i := uint32(0); i < n && err == nil; i++ {
		var flags uint32
		if flags, err = r.u32(); err != nil {
			break
		}
		if flags > 7 {
			return fmt.Errorf("%w: element segment flags %#x", errMalformed, flags)
		}
		if flags&2 != 0 && flags&1 == 0 { // an explicit table index
			if _, err = r.u32(); err != nil {
				break
			}
		}
		if flags&1 == 0 { // active: an offset
			if _, err = r.expr(0); err != nil {
				break
			}
		}
		if flags&3 != 0 { // an element kind or reference type
			if _, err = r.byte(); err != nil {
				break
			}
		}
		var k uint32
		if k, err = vecCount(r, maxElemEntries, "element segment entries"); err != nil {
			break
		}
		for j := uint32(0); j < k && err == nil; j++ {
			if flags&4 != 0 {
				_, err = r.expr(0)
			} else {
				_, err = r.u32()
			}
		}
		s.ElemEntries += uint64(k)
	}
	if err == nil && s.ElemEntries > maxElemEntries {
		err = &tooComplex{fmt.Sprintf("%d element segment entries in all, above the limit of %d", s.ElemEntries, maxElemEntries)}
	}
	return err
}

func dataSection(r *reader, s *moduleShape) error {
	n, err := vecCount(r, maxDataSegments, "data segments")
	for i := uint32(0); i < n && err == nil; i++ {
		var flags uint32
		if flags, err = r.u32(); err != nil {
			break
		}
		switch flags {
		case 0:
			_, err = r.expr(0)
		case 1:
		case 2:
			if _, err = r.u32(); err == nil {
				_, err = r.expr(0)
			}
		default:
			return fmt.Errorf("%w: data segment flags %#x", errMalformed, flags)
		}
		if err != nil {
			break
		}
		var k uint32
		if k, err = r.u32(); err == nil {
			err = r.skip(uint64(k))
			s.DataBytes += uint64(k)
		}
	}
	return err
}

func codeSection(r *reader, s *moduleShape) error {
	n, err := vecCount(r, maxFunctions, "function bodies")
	for i := uint32(0); i < n && err == nil; i++ {
		var size uint32
		if size, err = r.u32(); err != nil {
			break
		}
		if size > maxBodyBytes {
			return &tooComplex{fmt.Sprintf("function body %d is %d bytes, above the limit of %d", i, size, maxBodyBytes)}
		}
		var body *reader
		if body, err = r.sub(size); err != nil {
			break
		}
		s.MaxBody = max(s.MaxBody, int(size))
		var decls uint32
		if decls, err = vecCount(body, maxLocals, "local declarations"); err != nil {
			break
		}
		var locals uint64
		for j := uint32(0); j < decls && err == nil; j++ {
			var k uint32
			if k, err = body.u32(); err == nil {
				locals += uint64(k)
				err = body.valType()
			}
		}
		if err != nil {
			break
		}
		if locals > maxLocals {
			return &tooComplex{fmt.Sprintf("function body %d declares %d locals, above the limit of %d", i, locals, maxLocals)}
		}
		s.MaxLocals = max(s.MaxLocals, locals)
		var depth int
		if depth, err = body.expr(maxNesting); err != nil {
			var tc *tooComplex
			if errors.As(err, &tc) {
				return &tooComplex{fmt.Sprintf("function body %d: %v", i, tc.what)}
			}
			return fmt.Errorf("function body %d: %w", i, err)
		}
		if !body.done() {
			return fmt.Errorf("%w: function body %d goes on after its end", errMalformed, i)
		}
		s.MaxNesting = max(s.MaxNesting, depth)
	}
	return err
}

// What follows an opcode, for expr.
const (
	immInvalid byte = iota
	immNone
	immBlock
	immEnd
	immU32
	immU32x2
	immBrTable
	immSelectT
	immS32
	immS64
	immBytes4
	immBytes8
	immS33
	immFC
	immFD
)

// immediates maps every one-byte opcode of WebAssembly 2.0 to what follows it.
var immediates = func() (t [256]byte) {
	set := func(kind byte, ops ...byte) {
		for _, op := range ops {
			t[op] = kind
		}
	}
	set(immNone, 0x00, 0x01, 0x05, 0x0f, 0x1a, 0x1b, 0xd1)
	for op := 0x45; op <= 0xc4; op++ {
		t[op] = immNone
	}
	set(immBlock, 0x02, 0x03, 0x04)
	set(immEnd, 0x0b)
	set(immU32, 0x0c, 0x0d, 0x10, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x3f, 0x40, 0xd2)
	set(immU32x2, 0x11) // call_indirect
	for op := 0x28; op <= 0x3e; op++ {
		t[op] = immU32x2 // a memarg: alignment and offset
	}
	set(immBrTable, 0x0e)
	set(immSelectT, 0x1c)
	set(immS32, 0x41)
	set(immS64, 0x42)
	set(immBytes4, 0x43)
	set(immBytes8, 0x44)
	set(immS33, 0xd0) // ref.null's heap type
	set(immFC, 0xfc)
	set(immFD, 0xfd)
	return t
}()

// expr reads instructions up to the end that closes the expression and
// returns the deepest nesting of blocks, loops and ifs in it, which may be
// at most limit. The common immediates (indices, constants, memargs) are
// skipped in place, on a local copy of the offset: this loop runs once per
// instruction of every function, before every run, cached or not.
func (r *reader) expr(limit int) (int, error) {
	b, off := r.b, r.off
	depth, deepest := 1, 1
	for depth > 0 {
		if off >= len(b) {
			return 0, errTruncated
		}
		op := b[off]
		off++
		switch immediates[op] {
		case immNone:
			continue
		case immEnd:
			depth--
			continue
		case immU32:
			if off = skipLEB(b, off, 5, 0x0f); off < 0 {
				return 0, errBadNumber(b)
			}
			continue
		case immU32x2:
			if off = skipLEB(b, off, 5, 0x0f); off >= 0 {
				off = skipLEB(b, off, 5, 0x0f)
			}
			if off < 0 {
				return 0, errBadNumber(b)
			}
			continue
		case immS32, immS33:
			if off = skipLEB(b, off, 5, 0x7f); off < 0 {
				return 0, errBadNumber(b)
			}
			continue
		case immS64:
			if off = skipLEB(b, off, 10, 0x7f); off < 0 {
				return 0, errBadNumber(b)
			}
			continue
		case immBytes4:
			off += 4
			continue
		case immBytes8:
			off += 8
			continue
		}
		// The rest, rarer, through the reader.
		r.off = off
		var err error
		switch immediates[op] {
		case immBlock:
			if err = r.blockType(); err != nil {
				return 0, err
			}
			depth++
			if depth-1 > limit {
				return 0, &tooComplex{fmt.Sprintf("blocks nested more than %d deep", limit)}
			}
			deepest = max(deepest, depth)
		case immBrTable:
			var n uint32
			if n, err = vecCount(r, maxBrTable, "br_table targets"); err == nil {
				for i := uint32(0); i <= n && err == nil; i++ {
					_, err = r.u32()
				}
			}
		case immSelectT:
			var n uint32
			if n, err = vecCount(r, maxResults, "select types"); err == nil {
				for i := uint32(0); i < n && err == nil; i++ {
					err = r.valType()
				}
			}
		case immFC:
			err = r.prefixFC()
		case immFD:
			err = r.prefixFD()
		default:
			return 0, fmt.Errorf("%w: opcode %#x at byte %d", errMalformed, op, off-1)
		}
		if err != nil {
			return 0, err
		}
		off = r.off
	}
	if off > len(b) { // a fixed-size immediate ran past the end
		return 0, errTruncated
	}
	r.off = off
	return deepest - 1, nil
}

// skipLEB returns the offset just past the LEB128 number at off in b, of
// at most n bytes, whose last byte, if it is the n-th, is at most last (the
// bits left of a 32-bit number, or the sign's); or -1. An off already past
// the end (after a fixed-size immediate) is -1 too.
func skipLEB(b []byte, off, n int, last byte) int {
	if off < len(b) && b[off] < 0x80 {
		return off + 1
	}
	for i := 0; i < n; i++ {
		if off+i >= len(b) {
			return -1
		}
		if c := b[off+i]; c < 0x80 {
			if i == n-1 && c > last {
				return -1
			}
			return off + i + 1
		}
	}
	return -1
}

// errBadNumber is what expr reports for a number skipLEB refused.
func errBadNumber([]byte) error {
	return fmt.Errorf("%w: a truncated or overlong number", errMalformed)
}

func (r *reader) blockType() error {
	if r.done() {
		return errTruncated
	}
	if c := r.b[r.off]; c == 0x40 || isValType(c) {
		r.off++
		return nil
	}
	return r.sleb(5) // a type index, as a signed 33-bit number
}

func (r *reader) memArg() error {
	if _, err := r.u32(); err != nil {
		return err
	}
	_, err := r.u32()
	return err
}

// prefixFC skips the immediates of the saturating truncations and the bulk
// memory and table instructions.
func (r *reader) prefixFC() error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	n := 0
	switch {
	case sub <= 7:
	case sub == 9 || sub == 11 || sub == 13 || sub >= 15 && sub <= 17:
		n = 1
	case sub == 8 || sub == 10 || sub == 12 || sub == 14:
		n = 2
	default:
		return fmt.Errorf("%w: opcode 0xfc %d", errMalformed, sub)
	}
	for ; n > 0 && err == nil; n-- {
		_, err = r.u32()
	}
	return err
}

// prefixFD skips the immediates of a SIMD instruction.
func (r *reader) prefixFD() error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11 || sub == 92 || sub == 93: // loads and stores
		return r.memArg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		return r.skip(16)
	case sub >= 21 && sub <= 34: // lane accesses
		return r.skip(1)
	case sub >= 84 && sub <= 91: // lane loads and stores
		if err := r.memArg(); err != nil {
			return err
		}
		return r.skip(1)
	case sub <= 255:
		return nil
	}
	return fmt.Errorf("%w: opcode 0xfd %d", errMalformed, sub)
}
