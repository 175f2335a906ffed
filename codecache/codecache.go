// Package codecache keeps a module's compiled machine code between runs
// under the profiles whose host is not trusted, so that a run need not
// compile again what an earlier run of the same bundle compiled.
//
// The cache has two tiers:
//
//   - The memory tier is a directory on a file system held in memory
//     (tmpfs) inside the confidential VM, one subdirectory per module,
//     where wazero keeps its own compilation cache. Its pages are the
//     VM's encrypted memory: the host can neither read nor change them.
//     It lasts until the VM stops, and is bounded by a budget (the least
//     recently used modules go first).
//   - The disk tier is a directory on the host's disk, which the host
//     controls. Each entry holds one compiled module and an AES-256-GMAC
//     tag over it under a key of its own, derived (HKDF-SHA256) from a key
//     the TEE derives for the bundle's measurement (see tee.KeyDeriver),
//     the entry's random salt and its binding (module digest, wazero's
//     version, the platform, the compile options) and head. An entry is
//     copied into the memory tier, and takes wazero's name there only once
//     its tag verifies on that copy; one whose tag fails, that is
//     truncated, swapped for another module's or made for another
//     measurement is never executed: it is refused, the run compiles
//     afresh, and the fresh code replaces it.
//
// wazero reads only the memory tier: what it executes never comes from a
// file the host could change after it was checked.
package codecache

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ampoule-run/ampoule/sealed"
)

// WazeroVersion is the version of wazero built into this program, found
// as wazero finds it (the build's module list; "dev" without one): it
// names wazero's own directory in a module's memory directory, and binds
// every disk entry.
var WazeroVersion = sync.OnceValue(func() string {
	v := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
				v = dep.Version
			}
		}
		if v == "" || v == "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" || v == "(devel)" {
		v = "dev"
	}
	return v
})

// KeyLabel is the label a TEE derives the cache's MAC key with.
const KeyLabel = "code-cache"

// magic opens every disk entry; its last byte is the format's version.
var magic = []byte("AMPCODE\x03")

// DefaultBudget bounds the memory tier: 512 MiB of compiled code, about
// fifty Go guests of hello's size.
const DefaultBudget = 512 << 20

// maxEntryFactor bounds a disk entry by the module it was compiled from:
// compiled code is about 4 times the module for a Go guest. An entry is
// streamed, never held whole in memory.
const (
	maxEntryFactor = 16
	maxEntryFloor  = 16 << 20
)

// Outcome is what Open found for a module.
type Outcome int

const (
	// Miss: no entry in either tier; the run compiles and Commit stores.
	Miss Outcome = iota
	// MemoryHit: the memory tier holds the module's code.
	MemoryHit
	// DiskHit: a disk entry verified and was copied into the memory tier.
	DiskHit
	// Refused: a disk entry did not verify; the run compiles and Commit
	// replaces the entry.
	Refused
)

// String names the outcome, as the run's log records it.
func (o Outcome) String() string {
	switch o {
	case MemoryHit:
		return "memory hit"
	case DiskHit:
		return "disk hit, verified"
	case Refused:
		return "disk entry refused"
	}
	return "miss"
}

// ErrNoMemory: no memory-backed directory is there for the memory tier.
var ErrNoMemory = errors.New("no memory-backed directory (tmpfs) for the compilation cache")

// Options say where the tiers are.
type Options struct {
	// Memory is the memory tier's directory, which must be on tmpfs or
	// ramfs; it is made (0700) if missing. "" is DefaultMemory().
	Memory string
	// Disk is the disk tier's directory; it is made (0700) if missing.
	// "" means no disk tier: code lasts only in memory.
	Disk string
	// Key is the MAC key for the disk tier, a function so that the TEE is
	// asked only when the disk tier is used (nil: no disk tier). It must
	// be bound to the bundle's measurement.
	Key func() ([]byte, error)
	// Budget bounds the memory tier in bytes; 0 is DefaultBudget.
	Budget int64
	// Compile names the compile options the code is made with, which
	// change the code wazero makes; "" is DefaultCompile. Code made under
	// other options is kept apart and binds entries differently.
	Compile string
	// ModuleDigest, if set, returns the SHA-384 of the module Open is
	// given, which a caller that measured it has already; nil: Open
	// hashes the module.
	ModuleDigest func() [48]byte
}

// DefaultCompile is how a supervised runner compiles: wazero's optimizing
// compiler, without the termination checks a runtime closed on context
// cancellation adds (the supervisor kills a runner instead).
const DefaultCompile = "compiler;close-on-context-done=false"

// ErrNotRoot: the memory tier is used only by a launcher running as root.
// wazero opens what it executes by path, so the directory must be one that
// only the trust boundary can change: root inside the confidential VM is
// inside it, while another process of an ordinary launcher's own user may
// be the host's (which is why the launcher is not dumpable).
var ErrNotRoot = errors.New("the compilation cache is kept only by a launcher running as root: an ordinary user's other processes could change the code it runs; the module is compiled in memory")

// euid is the effective user, a variable for tests.
var euid = os.Geteuid

// DefaultMemory is the memory tier's directory, in /dev/shm: a tmpfs whose
// sticky bit keeps other users from renaming or removing root's entries.
// (XDG_RUNTIME_DIR is not consulted: it is the host's to set.)
func DefaultMemory() (string, error) {
	if !sealed.MemoryBacked("/dev/shm") {
		return "", ErrNoMemory
	}
	return filepath.Join("/dev/shm", fmt.Sprintf("ampoule-code-%d", os.Getuid())), nil
}

// Cache is one run's view of the cache for one module.
type Cache struct {
	opts    Options
	digest  [48]byte // SHA-384 of the module
	modSize int
	dir     string // the module's memory directory: what wazero is given
	outcome Outcome
	reason  string
	keyVal  []byte
	keyErr  error
}

// Open finds module's compiled code. It returns the directory to give
// wazero as its compilation cache and what it found. A disk entry that
// does not verify is no error: Outcome says Refused and Reason why.
func Open(module []byte, opts Options) (*Cache, error) {
	if euid() != 0 {
		return nil, ErrNotRoot
	}
	if opts.Memory == "" {
		var err error
		if opts.Memory, err = DefaultMemory(); err != nil {
			return nil, err
		}
	}
	if opts.Budget == 0 {
		opts.Budget = DefaultBudget
	}
	if opts.Compile == "" {
		opts.Compile = DefaultCompile
	}
	if err := privateDir(opts.Memory, true); err != nil {
		return nil, err
	}
	c := &Cache{opts: opts, modSize: len(module)}
	if opts.ModuleDigest != nil {
		c.digest = opts.ModuleDigest()
	} else {
		c.digest = sha512.Sum384(module)
	}
	dirName := sha256.Sum256(c.binding())
	c.dir = filepath.Join(opts.Memory, hex.EncodeToString(dirName[:]))
	if err := os.MkdirAll(c.wazeroDir(), 0o700); err != nil {
		return nil, fmt.Errorf("the compilation cache's memory tier: %w", err)
	}
	now := time.Now()
	os.Chtimes(c.dir, now, now) // the least recently used go first
	names, err := c.entries()
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		c.outcome = MemoryHit
		return c, nil
	}
	if opts.Disk == "" || opts.Key == nil {
		return c, nil
	}
	if err := c.load(); err != nil {
		var bad *badEntry
		if !errors.As(err, &bad) {
			return nil, err
		}
		c.outcome, c.reason = Refused, bad.reason
		return c, nil
	}
	return c, nil
}

// Dir is the directory to pass to wazero.NewCompilationCacheWithDir.
func (c *Cache) Dir() string { return c.dir }

// Outcome is what Open found.
func (c *Cache) Outcome() Outcome { return c.outcome }

// Reason says why a disk entry was refused ("" unless Refused).
func (c *Cache) Reason() string { return c.reason }

// wazeroDir is where wazero keeps its entries inside the module's
// directory.
func (c *Cache) wazeroDir() string {
	return filepath.Join(c.dir, "wazero-"+WazeroVersion()+"-"+runtime.GOARCH+"-"+runtime.GOOS)
}

// entries lists the compiled entries wazero wrote (a name of 64 hex
// digits); its temporary files are not entries.
func (c *Cache) entries() ([]string, error) {
	des, err := os.ReadDir(c.wazeroDir())
	if err != nil {
		return nil, fmt.Errorf("the compilation cache's memory tier: %w", err)
	}
	var names []string
	for _, de := range des {
		if de.Type().IsRegular() && isEntryName(de.Name()) {
			names = append(names, de.Name())
		}
	}
	return names, nil
}

func isEntryName(name string) bool {
	if len(name) != 64 {
		return false
	}
	_, err := hex.DecodeString(name)
	return err == nil && strings.ToLower(name) == name
}

// diskName is the disk entry's file name for this module and platform.
func (c *Cache) diskName() string {
	h := sha256.Sum256(c.binding())
	return hex.EncodeToString(h[:16]) + ".code"
}

// binding is what an entry is bound to besides the measurement, which
// the key carries: the module, wazero's version, the platform and the
// compile options. It names the module's memory directory too.
func (c *Cache) binding() []byte {
	var b bytes.Buffer
	b.Write(magic)
	b.Write(c.digest[:])
	for _, s := range []string{WazeroVersion(), runtime.GOARCH, runtime.GOOS, c.opts.Compile} {
		binary.Write(&b, binary.BigEndian, uint16(len(s)))
		b.WriteString(s)
	}
	return b.Bytes()
}

// key asks for the MAC key once.
func (c *Cache) key() ([]byte, error) {
	if c.keyVal == nil && c.keyErr == nil {
		c.keyVal, c.keyErr = c.opts.Key()
		if c.keyErr == nil && len(c.keyVal) < 16 {
			c.keyVal, c.keyErr = nil, fmt.Errorf("a MAC key of %d bytes is too short", len(c.keyVal))
		}
	}
	return c.keyVal, c.keyErr
}

// badEntry is a disk entry that must not be used.
type badEntry struct{ reason string }

func (e *badEntry) Error() string { return "compilation cache entry refused: " + e.reason }

// maxEntry bounds a disk entry for this module.
func (c *Cache) maxEntry() int64 {
	return max(int64(maxEntryFloor), int64(c.modSize)*maxEntryFactor)
}

// load reads the module's disk entry, if there is one, checks it and
// copies its code into the memory tier: streamed into a temporary file
// there, which takes wazero's name only once the MAC verifies.
func (c *Cache) load() error {
	root, err := openDisk(c.opts.Disk)
	if err != nil {
		return err
	}
	defer root.Close()
	f, err := root.OpenFile(c.diskName(), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &badEntry{fmt.Sprintf("opening it: %v", err)}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &badEntry{fmt.Sprintf("%v", err)}
	}
	if !st.Mode().IsRegular() {
		return &badEntry{"not a regular file"}
	}
	if st.Size() > c.maxEntry() {
		return &badEntry{fmt.Sprintf("%d bytes, above the bound of %d for this module", st.Size(), c.maxEntry())}
	}
	key, err := c.key()
	if err != nil {
		return nil // no disk tier this run; Commit says why
	}
	tmp, err := os.CreateTemp(c.wazeroDir(), "import-*.tmp")
	if err != nil {
		return fmt.Errorf("the compilation cache's memory tier: %w", err)
	}
	defer os.Remove(tmp.Name()) // once renamed, it is gone already
	h, err := c.read(bufio.NewReaderSize(f, 1<<20), st.Size(), tmp)
	if err == nil {
		// The MAC is checked on the copy in the memory tier, which only
		// the trust boundary can change: the bytes wazero will read.
		err = c.verifyFile(h, key, tmp)
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("the compilation cache's memory tier: %w", cerr)
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(c.wazeroDir(), h.name)); err != nil {
		return fmt.Errorf("the compilation cache's memory tier: %w", err)
	}
	c.outcome = DiskHit
	return nil
}

// An entry is
//
//	magic ‖ salt ‖ u16 len(name) ‖ name ‖ u64 len(code) ‖ code ‖ tag
//
// where tag is AES-256-GMAC (GCM with nothing to encrypt) over the code,
// under a key of the entry's own: HKDF-SHA256 of the TEE's key, with the
// entry's random salt and, as its info, the binding, the name and the
// code's length. A key made for one entry and used once, so GCM's zero
// nonce is never used twice with it; whatever in the entry's head or the
// binding differs gives another key, and the tag fails.
const (
	saltLen = 32
	tagLen  = 16
)

// entryHead is what read found of an entry before its code is checked.
type entryHead struct {
	salt    []byte
	name    string
	codeLen int64
	tag     []byte
}

// entryAEAD is the entry's GCM, under its own key.
func (c *Cache) entryAEAD(key, salt []byte, name string, codeLen int64) (cipher.AEAD, error) {
	var info bytes.Buffer
	info.WriteString("ampoule/code-cache/entry/v3")
	info.Write(c.binding())
	binary.Write(&info, binary.BigEndian, uint16(len(name)))
	info.WriteString(name)
	binary.Write(&info, binary.BigEndian, uint64(codeLen))
	k, err := hkdf.Key(sha256.New, key, salt, info.String(), 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

var zeroNonce = make([]byte, 12)

// seal is an entry for name and code under key, with a fresh salt.
func (c *Cache) seal(name string, code []byte, key []byte) ([]byte, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return c.sealWith(salt, name, code, key)
}

func (c *Cache) sealWith(salt []byte, name string, code []byte, key []byte) ([]byte, error) {
	g, err := c.entryAEAD(key, salt, name, int64(len(code)))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(magic)
	b.Write(salt)
	binary.Write(&b, binary.BigEndian, uint16(len(name)))
	b.WriteString(name)
	binary.Write(&b, binary.BigEndian, uint64(len(code)))
	b.Write(code)
	return g.Seal(b.Bytes(), zeroNonce, nil, code), nil
}

// read reads an entry of size bytes from r, copying its code to code as
// it goes, and returns its head, with which verify checks the code. What
// was copied counts only once verify has passed it: until then the code
// is anybody's.
func (c *Cache) read(r io.Reader, size int64, code io.Writer) (entryHead, error) {
	in := io.LimitReader(r, size)
	head := make([]byte, len(magic)+saltLen+2)
	if _, err := io.ReadFull(in, head); err != nil {
		return entryHead{}, &badEntry{fmt.Sprintf("truncated (%d bytes)", size)}
	}
	if !bytes.Equal(head[:len(magic)], magic) {
		return entryHead{}, &badEntry{"not an entry of this format"}
	}
	h := entryHead{salt: head[len(magic) : len(magic)+saltLen]}
	n := int64(binary.BigEndian.Uint16(head[len(magic)+saltLen:]))
	if int64(len(head))+n+8+tagLen > size {
		return entryHead{}, &badEntry{"truncated: its name runs past its end"}
	}
	rest := make([]byte, n+8)
	if _, err := io.ReadFull(in, rest); err != nil {
		return entryHead{}, &badEntry{"truncated in its name"}
	}
	h.name = string(rest[:n])
	codeLen := binary.BigEndian.Uint64(rest[n:])
	if codeLen != uint64(size-int64(len(head))-n-8-tagLen) {
		return entryHead{}, &badEntry{"truncated: its length does not match its size"}
	}
	h.codeLen = int64(codeLen)
	if _, err := io.CopyN(code, in, h.codeLen); err != nil {
		return entryHead{}, &badEntry{fmt.Sprintf("truncated in its code: %v", err)}
	}
	h.tag = make([]byte, tagLen)
	if _, err := io.ReadFull(in, h.tag); err != nil {
		return entryHead{}, &badEntry{"truncated before its MAC"}
	}
	return h, nil
}

// verify checks code, as read copied it, against the entry's tag.
func (c *Cache) verify(h entryHead, key, code []byte) error {
	g, err := c.entryAEAD(key, h.salt, h.name, int64(len(code)))
	if err != nil {
		return fmt.Errorf("the compilation cache's entry key: %w", err)
	}
	if int64(len(code)) != h.codeLen {
		return &badEntry{"truncated in its code"}
	}
	if _, err := g.Open(nil, zeroNonce, h.tag, code); err != nil {
		return &badEntry{"its MAC does not verify (changed, truncated, or made for another module, measurement or key)"}
	}
	if !isEntryName(h.name) {
		return &badEntry{"a malformed name"}
	}
	return nil
}

// verifyFile is verify for the code copied into f, which it maps rather
// than reads back.
func (c *Cache) verifyFile(h entryHead, key []byte, f *os.File) error {
	if h.codeLen == 0 {
		return c.verify(h, key, nil)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(h.codeLen), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("the compilation cache's memory tier: %w", err)
	}
	defer unix.Munmap(m)
	return c.verify(h, key, m)
}

// Commit stores what the run compiled: each entry wazero added to the
// memory tier is sealed into the disk tier, replacing a refused entry,
// and the memory tier is brought back under its budget. It reports
// whether anything was stored. After a memory hit it does nothing: the run
// added nothing to either tier, and walking the memory tier to size it
// would be the only work of the run's end.
func (c *Cache) Commit() (bool, error) {
	if c.outcome == MemoryHit {
		return false, nil
	}
	defer c.evict()
	if c.outcome == DiskHit || c.opts.Disk == "" || c.opts.Key == nil {
		return false, nil
	}
	// The memory tier held nothing of this module when the run began.
	names, err := c.entries()
	if err != nil {
		return false, err
	}
	if len(names) == 0 {
		return false, nil
	}
	// wazero keeps one entry per module and CPU; a module compiled on
	// this CPU leaves one.
	name := names[0]
	code, err := os.ReadFile(filepath.Join(c.wazeroDir(), name))
	if err != nil {
		return false, fmt.Errorf("the compilation cache's memory tier: %w", err)
	}
	key, err := c.key()
	if err != nil {
		return false, err
	}
	if err := privateDir(c.opts.Disk, false); err != nil {
		return false, err
	}
	root, err := openDisk(c.opts.Disk)
	if err != nil {
		return false, err
	}
	defer root.Close()
	entry, err := c.seal(name, code, key)
	if err != nil {
		return false, fmt.Errorf("the compilation cache's entry: %w", err)
	}
	if err := writeRootAtomic(root, c.diskName(), entry); err != nil {
		return false, fmt.Errorf("the compilation cache %s: %w", c.opts.Disk, err)
	}
	return true, nil
}

// evict removes the least recently used modules' directories until the
// memory tier is within its budget; this run's module stays.
func (c *Cache) evict() {
	des, err := os.ReadDir(c.opts.Memory)
	if err != nil {
		return
	}
	type mod struct {
		path string
		used time.Time
		size int64
	}
	var mods []mod
	var total int64
	for _, de := range des {
		if !de.IsDir() || len(de.Name()) != 64 {
			continue
		}
		p := filepath.Join(c.opts.Memory, de.Name())
		info, err := de.Info()
		if err != nil {
			continue
		}
		size := dirSize(p)
		total += size
		// A module used in the last minute may be in a run's use now.
		if p != c.dir && time.Since(info.ModTime()) > time.Minute {
			mods = append(mods, mod{p, info.ModTime(), size})
		}
	}
	slices.SortFunc(mods, func(a, b mod) int { return a.used.Compare(b.used) })
	for _, m := range mods {
		if total <= c.opts.Budget {
			break
		}
		if os.RemoveAll(m.path) == nil {
			total -= m.size
		}
	}
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// privateDir makes dir (0700) if missing and checks that it is a
// directory of this user's that no one else may write, and, for the
// memory tier, that it is memory-backed and that its parent lets no one
// else rename or replace it (root's, or sticky).
func privateDir(dir string, memory bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("the compilation cache %s: %w", dir, err)
	}
	var f *os.File
	if memory {
		// Every check is made on the objects opened, the parent and then
		// the tier beneath it, never on a name looked up again: in a sticky
		// parent such as /dev/shm another user may have made the tier's
		// name first, and may exchange a directory of its own and a link
		// to one of root's there between a look and an open. A link is
		// never followed (RESOLVE_NO_SYMLINKS, O_NOFOLLOW); a tier that
		// is root's and in a parent only root may rename in keeps its name.
		parent := filepath.Dir(dir)
		pfd, err := unix.Openat2(unix.AT_FDCWD, parent, &unix.OpenHow{Flags: unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
		if err != nil {
			return fmt.Errorf("the compilation cache %s (no link is followed to it): %w", parent, err)
		}
		defer unix.Close(pfd)
		var st unix.Stat_t
		if err := unix.Fstat(pfd, &st); err != nil {
			return fmt.Errorf("the compilation cache %s: %w", parent, err)
		}
		if st.Uid != 0 || st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
			return fmt.Errorf("the compilation cache's memory tier %s is in a directory others may change (owner %d, mode %o)", dir, st.Uid, st.Mode&0o7777)
		}
		fd, err := unix.Openat(pfd, filepath.Base(dir), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("the compilation cache's memory tier %s is a link or cannot be read (%v)", dir, err)
		}
		f = os.NewFile(uintptr(fd), dir)
	} else {
		var err error
		if f, err = os.Open(dir); err != nil {
			return fmt.Errorf("the compilation cache %s: %w", dir, err)
		}
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("the compilation cache %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("the compilation cache %s is not a directory", dir)
	}
	if st.Uid != uint32(os.Getuid()) || st.Mode&0o022 != 0 {
		return fmt.Errorf("the compilation cache %s is not this user's alone (owner %d, mode %o)", dir, st.Uid, st.Mode&0o777)
	}
	if memory {
		var sfs unix.Statfs_t
		if err := unix.Fstatfs(int(f.Fd()), &sfs); err != nil {
			return fmt.Errorf("the compilation cache %s: %w", dir, err)
		}
		if sfs.Type != unix.TMPFS_MAGIC && sfs.Type != unix.RAMFS_MAGIC {
			return fmt.Errorf("the compilation cache's memory tier %s is not memory-backed (tmpfs): %w", dir, ErrNoMemory)
		}
	}
	return nil
}

// openDisk opens the disk tier; every file in it is then reached beneath
// this descriptor, never by a path the host could redirect. The host may
// make the directory, or one above it, a symbolic link to anywhere (a
// launcher running as root would then write its entries there): no link
// is followed on the way to it (RESOLVE_NO_SYMLINKS), and such a tier is
// refused.
func openDisk(dir string) (*os.Root, error) {
	open := func() (int, error) {
		return unix.Openat2(unix.AT_FDCWD, dir, &unix.OpenHow{Flags: unix.O_DIRECTORY | unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
	}
	fd, err := open()
	if errors.Is(err, unix.ENOENT) {
		if err = os.MkdirAll(dir, 0o700); err == nil {
			fd, err = open()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the compilation cache %s (no link is followed to it): %w", dir, err)
	}
	defer unix.Close(fd)
	// The directory opened, by its descriptor: a rename of the path from
	// here on changes nothing.
	root, err := os.OpenRoot(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return nil, fmt.Errorf("the compilation cache %s: %w", dir, err)
	}
	return root, nil
}

// writeRootAtomic writes data to name beneath root through a temporary
// file, synced, and a rename, so a reader sees all of it or nothing.
func writeRootAtomic(root *os.Root, name string, data []byte) error {
	var rnd [8]byte
	binary.LittleEndian.PutUint64(rnd[:], uint64(time.Now().UnixNano())^uint64(os.Getpid())<<32)
	tmp := name + "." + hex.EncodeToString(rnd[:]) + ".tmp"
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
	}
	return err
}
