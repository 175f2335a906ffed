package sandbox

import (
	"context"
	"encoding/binary"

	"github.com/tetratelabs/wazero/api"

	"github.com/ampoule-run/ampoule/shim"
)

// A wasiFix amends one of wazero's WASI functions where it differs from
// what WASI preview 1's conformance tests expect (and from the errno a
// POSIX program can act on). It is given wazero's own functions by name
// (each one's host code, called with the guest's module and a stack of
// its own) and returns the function the gate exports in its place.
//
// wazero's WASI functions keep the guest's file table inside wazero; an
// amendment reaches it only through wazero's functions themselves, so it
// learns whether a descriptor is open by asking fd_advise with an advice
// no call has (wazero answers EBADF for a closed descriptor before it
// checks the advice, EINVAL after). Where wazero's function needs a buffer
// the guest did not give, the amendment lends it guest memory it saves and
// restores: a WASI preview 1 guest has one thread, which is in the call.
//
// The gate translates a function's descriptors between the guest's
// numbers and wazero's (fdMap) around the amendment, which sees wazero's,
// unless ownFDs says the amendment translates them itself.
type wasiFix struct {
	why    string
	wrap   func(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunction
	ownFDs bool
}

// fixState is what the amendments of one run remember between calls: the
// synchronous-write flags (DSYNC, RSYNC, SYNC) each descriptor path_open
// opened with, which wazero passes to the file system but does not keep.
// One run has one guest thread, so it needs no lock.
type fixState struct {
	syncFlags map[uint32]uint16
	// rights holds the rights of each descriptor whose rights are
	// narrower than wazero's, which grants every right a file or directory
	// can have: those path_open was asked for, within its directory's
	// inheriting rights, and those fd_fdstat_set_rights kept. A
	// descriptor absent from it has wazero's.
	rights map[uint32]fdRights
	// lookup tells the run's confined mounts that a Utimens must not
	// follow a final link (nil: no mount listens).
	lookup *linkLookup
	// fds is the guest's numbering of wazero's descriptors, once a
	// preopen has moved. The maps above are keyed by wazero's numbers.
	fds fdMap
	// call is fd_allocate's stack for the fd_filestat_get it makes, kept
	// here so that the call allocates none.
	call [2]uint64
	// nameLen holds, by wazero's number, one more than the length of the
	// name of each preopen fd_prestat_dir_name has asked about (0: not
	// known). move keeps it true across a close and a renumber, the only
	// calls that change what a number names.
	nameLen []uint32
	// regular has bit fd set for each descriptor below 64, by wazero's
	// number, that fd_allocate found to be a regular file; move keeps it
	// true, as nameLen.
	regular uint64
}

// fdRights is a descriptor's base and inheriting rights. They are
// enforced (the calls that need a right they lack are ENOTCAPABLE) when
// fd_fdstat_set_rights set them, of this descriptor or of the directory
// it was opened beneath; rights path_open merely did not ask for are
// reported, and the call goes to the file, which answers as POSIX would
// (a write to a descriptor opened to read is EBADF, to a read-only mount
// EROFS).
type fdRights struct {
	base, inheriting uint64
	enforced         bool
}

// WASI's rights the amendments check.
const (
	rightFdDatasync          = 1 << 0
	rightFdRead              = 1 << 1
	rightFdSeek              = 1 << 2
	rightFdFdstatSetFlags    = 1 << 3
	rightFdSync              = 1 << 4
	rightFdTell              = 1 << 5
	rightFdWrite             = 1 << 6
	rightFdAdvise            = 1 << 7
	rightFdAllocate          = 1 << 8
	rightPathCreateFile      = 1 << 10
	rightPathOpen            = 1 << 13
	rightFdReaddir           = 1 << 14
	rightPathFilestatSetSize = 1 << 19
	rightFdFilestatGet       = 1 << 21
	rightFdFilestatSetSize   = 1 << 22
	rightFdFilestatSetTimes  = 1 << 23
	// allRights is every right WASI preview 1 defines (SOCK_SHUTDOWN is
	// the last), the most a descriptor may have.
	allRights = 1<<29 - 1
)

// errnoNOTCAPABLE is what a call a descriptor lacks the right for answers.
const errnoNOTCAPABLE = uint64(shim.ENOTCAPABLE)

// lacks reports whether fd's recorded rights lack any of right.
func (st *fixState) lacks(fd uint32, right uint64) bool {
	if len(st.rights) == 0 {
		return false
	}
	r, ok := st.rights[fd]
	return ok && r.enforced && r.base&right != right
}

// move carries fd from's remembered flags, rights, preopen name length
// and regular-file bit to to, after a
// renumber; with from < 0 it forgets to's, after a close.
func (st *fixState) move(from int64, to uint32) {
	moveKey(st.syncFlags, from, to)
	moveKey(st.rights, from, to)
	if to < 64 {
		st.regular &^= 1 << to
		if from >= 0 && from < 64 && st.regular&(1<<from) != 0 {
			st.regular |= 1 << to
		}
	}
	if from >= 0 && from < 64 {
		st.regular &^= 1 << from
	}
	if int(to) < len(st.nameLen) {
		st.nameLen[to] = 0
	}
	if from >= 0 && from < int64(len(st.nameLen)) {
		if int(to) < len(st.nameLen) {
			st.nameLen[to] = st.nameLen[from]
		}
		st.nameLen[from] = 0
	}
}

// nameLenMax bounds the descriptors whose preopen name length fixState
// remembers: wazero numbers its preopens first, from 0.
const nameLenMax = 64

// moveKey moves m's entry for from to to (from < 0: deletes to's).
func moveKey[V any](m map[uint32]V, from int64, to uint32) {
	if len(m) == 0 {
		return
	}
	if v, ok := m[uint32(from)]; ok && from >= 0 {
		m[to] = v
	} else {
		delete(m, to)
	}
	if from >= 0 {
		delete(m, uint32(from))
	}
}

// guard is the amendment of an fd_ function that needs right of its
// first parameter's descriptor.
func guard(name string, right uint64) wasiFix {
	return guardNoSys(name, right, 0)
}

// guardNoSys is guard for a function wazero answers ENOSYS on stdin,
// stdout and stderr (its stdio files implement none of it): the answer
// becomes nosys, what the POSIX call answers on a pipe or terminal.
func guardNoSys(name string, right, nosys uint64) wasiFix {
	why := "refused (ENOTCAPABLE) when fd_fdstat_set_rights took away the right it needs, of the descriptor or of the directory it was opened beneath"
	if nosys != 0 {
		why += "; on stdio " + shim.ErrnoName(uint32(nosys)) + ", as on a pipe, where wazero answered ENOSYS"
	}
	return wasiFix{
		why:    why,
		ownFDs: true,
		wrap: func(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunction {
			return &guarded{st: st, fn: orig[name], right: right, nosys: nosys}
		},
	}
}

// closure gives an amendment written as a closure the wrap signature.
func closure(wrap func(map[string]api.GoModuleFunction, *fixState) api.GoModuleFunc) func(map[string]api.GoModuleFunction, *fixState) api.GoModuleFunction {
	return func(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunction {
		return wrap(orig, st)
	}
}

// guarded is a guard's host function. It is a type of its own, not a
// closure, so that wazero calls its Call directly (an api.GoModuleFunc
// costs a second indirect call), and the work only a moved preopen or a
// narrowed right needs is out of line: the guard cost about 90
// instructions a call as a closure, about 40 as this (BENCHMARKS.md, the
// per-call table).
type guarded struct {
	st           *fixState
	fn           api.GoModuleFunction
	right, nosys uint64
}

// Call implements api.GoModuleFunction.
func (g *guarded) Call(ctx context.Context, mod api.Module, stack []uint64) {
	if len(g.st.fds.toWazero) != 0 || len(g.st.rights) != 0 {
		if g.refused(stack) {
			return
		}
	}
	g.fn.Call(ctx, mod, stack)
	if g.nosys != 0 && stack[0] == errnoNOSYS {
		stack[0] = g.nosys
	}
}

// refused translates the descriptor to wazero's number and reports
// whether it lacks the guard's right (then the call's result is
// ENOTCAPABLE).
//
//go:noinline
func (g *guarded) refused(stack []uint64) bool {
	if len(g.st.fds.toWazero) != 0 {
		stack[0] = uint64(g.st.fds.wazero(uint32(stack[0])))
	}
	if g.st.lacks(uint32(stack[0]), g.right) {
		stack[0] = errnoNOTCAPABLE
		return true
	}
	return false
}

// WASI's fdflags that fixState keeps: DSYNC, RSYNC and SYNC.
const syncFdflags = 0x2 | 0x8 | 0x10

// wasiFixes lists the amended functions. TestWASIFixesAmendGatedFunctions
// keeps each one a function the gate lets run.
var wasiFixes = map[string]wasiFix{
	"fd_prestat_dir_name": {
		why:  "a buffer shorter than the name is ENAMETOOLONG, not a truncated success; a longer one gets the name",
		wrap: closure(fixPrestatDirName),
	},
	"fd_renumber": {
		why:    "renumbering to a descriptor that is not open is EBADF, as fd_renumber's contract has it; onto itself is success, not a closed descriptor; onto a preopen (a mount, stdio) closes it first, as any other destination, and a preopen (stdin, stdout, stderr, a mount) moves, where wazero answered ENOTSUP for both",
		wrap:   closure(fixRenumber),
		ownFDs: true,
	},
	"path_readlink": {
		why:  "a buffer shorter than the link's target gets its first bytes, as readlink(2) does, not ERANGE",
		wrap: closure(fixReadlink),
	},
	"path_link": {
		why:  "LOOKUPFLAGS_SYMLINK_FOLLOW is EINVAL (a link is made to the name, never through it); a new name ending in / is ENOENT; a link from one mount to another is EXDEV, as link(2) answers across file systems, not ENOSYS",
		wrap: closure(fixLink),
	},
	"path_filestat_set_times": {
		why:  "without LOOKUPFLAGS_SYMLINK_FOLLOW a final link's own times change (utimensat AT_SYMLINK_NOFOLLOW on the descriptor of its directory), where wazero opens what the link names",
		wrap: closure(fixSetTimes),
	},
	"poll_oneoff": {
		why: "an FD_WRITE subscription on an open descriptor is ready at once (stdout, stderr and files never block a write), not ENOTSUP",
		wrap: closure(func(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
			return remapPoll(st, fixPollOneoff(orig, st))
		}),
		ownFDs: true,
	},
	"path_open": {
		why:  "remembers the DSYNC, RSYNC and SYNC fdflags a file was opened with, which wazero does not, for fd_fdstat_get",
		wrap: closure(fixPathOpen),
	},
	"fd_fdstat_get": {
		why: "reports the DSYNC, RSYNC and SYNC fdflags a file was opened with, besides wazero's APPEND and NONBLOCK",
		wrap: closure(func(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
			return fixFdstatGet(orig, st, true)
		}),
		ownFDs: true,
	},
	"fd_close": {
		why:  "forgets a closed descriptor's fdflags and rights",
		wrap: closure(fixClose),
	},
	"fd_fdstat_set_rights": {
		why:  "narrows a descriptor's rights, which later calls honour; asking for a right it lacks is ENOTCAPABLE",
		wrap: closure(fixSetRights),
	},
	"fd_allocate": {
		why:  "a directory is EISDIR (wazero compares the length with the directory's size and answers success), and a descriptor without FD_ALLOCATE ENOTCAPABLE",
		wrap: closure(fixAllocate),
	},
	"path_rename": {
		why:  "a rename from one mount to another is EXDEV, as rename(2) answers across file systems, not ENOSYS",
		wrap: closure(crossMount("path_rename")),
	},
	"fd_read":              guard("fd_read", rightFdRead),
	"fd_pread":             guard("fd_pread", rightFdRead|rightFdSeek),
	"fd_write":             guard("fd_write", rightFdWrite),
	"fd_pwrite":            guard("fd_pwrite", rightFdWrite|rightFdSeek),
	"fd_seek":              guardNoSys("fd_seek", rightFdSeek, errnoSPIPE),
	"fd_tell":              guardNoSys("fd_tell", rightFdTell, errnoSPIPE),
	"fd_datasync":          guard("fd_datasync", rightFdDatasync),
	"fd_sync":              guard("fd_sync", rightFdSync),
	"fd_advise":            guard("fd_advise", rightFdAdvise),
	"fd_readdir":           guard("fd_readdir", rightFdReaddir),
	"fd_fdstat_set_flags":  guardNoSys("fd_fdstat_set_flags", rightFdFdstatSetFlags, errnoNOTSUP),
	"fd_filestat_get":      guard("fd_filestat_get", rightFdFilestatGet),
	"fd_filestat_set_size": guardNoSys("fd_filestat_set_size", rightFdFilestatSetSize, errnoINVAL),
	"fd_filestat_set_times": {
		why:  "on stdio ENOTSUP: wazero fell back to setting the times by a path stdio does not have, a nil dereference that trapped the run; and refused (ENOTCAPABLE) without FD_FILESTAT_SET_TIMES",
		wrap: closure(fixFdSetTimes),
	},
}

// WASI errnos the amendments answer.
const (
	errnoBADF        = uint64(shim.EBADF)
	errnoINVAL       = uint64(shim.EINVAL)
	errnoNAMETOOLONG = uint64(shim.ENAMETOOLONG)
	errnoNOENT       = uint64(shim.ENOENT)
	errnoNOTSOCK     = uint64(shim.ENOTSOCK)
	errnoRANGE       = uint64(shim.ERANGE)
	errnoFAULT       = uint64(shim.EFAULT)
	errnoISDIR       = uint64(shim.EISDIR)
	errnoNOSYS       = uint64(shim.ENOSYS)
	errnoXDEV        = uint64(shim.EXDEV)
	errnoNOTSUP      = uint64(shim.ENOTSUP)
	errnoSPIPE       = uint64(shim.ESPIPE)
)

// adviceNone is an fd_advise advice WASI does not define.
const adviceNone = 0xff

// fdOpen asks wazero whether fd is open in the calling module's table.
func fdOpen(ctx context.Context, mod api.Module, advise api.GoModuleFunction, fd uint64) bool {
	stack := []uint64{fd, 0, 0, adviceNone}
	advise.Call(ctx, mod, stack)
	return stack[0] != errnoBADF
}

// denyOnFD is a Deny for a function whose first parameter is a descriptor:
// a descriptor that is not open is EBADF, as a host without the function's
// objects would answer, and an open one the rule's errno.
func denyOnFD(orig map[string]api.GoModuleFunction, errno uint64) api.GoModuleFunc {
	advise := orig["fd_advise"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if !fdOpen(ctx, mod, advise, stack[0]) {
			stack[0] = errnoBADF
			return
		}
		stack[0] = errno
	}
}

// lend runs f with n bytes of guest memory at or before at (the whole
// range inside memory) as scratch, restoring them after; ok is false
// when the memory is smaller than n.
func lend(mod api.Module, at, n uint32, f func(ptr uint32)) bool {
	mem := mod.Memory()
	if mem == nil || mem.Size() < n {
		return false
	}
	ptr := min(at, mem.Size()-n)
	view, _ := mem.Read(ptr, n)
	// The few bytes most amendments lend are saved on the stack: copied
	// into and out of memory's own bytes, never handed to an interface,
	// they do not escape, so the usual call allocates nothing.
	var small [filestatSize]byte
	saved := small[:0]
	if n > uint32(len(small)) {
		saved = make([]byte, 0, n)
	}
	saved = append(saved, view...)
	f(ptr)
	if view, ok := mem.Read(ptr, n); ok { // f may have grown memory
		copy(view, saved)
	}
	return true
}

// fixPrestatDirName: wazero writes the first buf_len bytes of the name
// into a short buffer and succeeds, and answers ENAMETOOLONG for a long
// one. The name's length comes from fd_prestat_get, on lent memory, the
// first time a preopen is asked about; fixState remembers it after.
func fixPrestatDirName(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
	prestat, name := orig["fd_prestat_get"], orig["fd_prestat_dir_name"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		fd, buf, bufLen := stack[0], uint32(stack[1]), uint32(stack[2])
		if fd < uint64(len(st.nameLen)) && st.nameLen[fd] != 0 {
			if nameLen := st.nameLen[fd] - 1; bufLen < nameLen {
				stack[0] = errnoNAMETOOLONG
			} else {
				stack[2] = uint64(nameLen)
				name.Call(ctx, mod, stack)
			}
			return
		}
		var errno uint64
		var nameLen uint32
		if !lend(mod, buf, 8, func(ptr uint32) {
			st := []uint64{fd, uint64(ptr)}
			prestat.Call(ctx, mod, st)
			errno = st[0]
			nameLen, _ = mod.Memory().ReadUint32Le(ptr + 4)
		}) {
			stack[0] = errnoFAULT
			return
		}
		if errno == 0 && fd < nameLenMax {
			if st.nameLen == nil {
				st.nameLen = make([]uint32, nameLenMax)
			}
			st.nameLen[fd] = nameLen + 1
		}
		switch {
		case errno != 0:
			stack[0] = errno
		case bufLen < nameLen:
			stack[0] = errnoNAMETOOLONG
		default:
			stack[2] = uint64(nameLen)
			name.Call(ctx, mod, stack)
		}
	}
}

// fixRenumber: wazero moves a descriptor onto a number nothing has open,
// closes a descriptor renumbered onto itself, and refuses (ENOTSUP) to
// renumber a preopen (a mount's directory, or stdin, stdout or stderr) or
// onto one. The amendment refuses a destination that is not open (EBADF),
// answers success for a descriptor onto itself, and otherwise closes the
// destination first, as wazero closes any other, when wazero refuses.
// wazero then moves what is not a preopen; a preopen, which its table
// keeps at its number, moves in the guest's numbering (fdMap.swap) alone.
// Fdflags and rights move with the descriptor.
func fixRenumber(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
	advise, renumber, closeFD := orig["fd_advise"], orig["fd_renumber"], orig["fd_close"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		gFrom, gTo := uint32(stack[0]), uint32(stack[1])
		from, to := st.fds.wazero(gFrom), st.fds.wazero(gTo)
		if !fdOpen(ctx, mod, advise, uint64(to)) {
			stack[0] = errnoBADF
			return
		}
		if gFrom == gTo {
			stack[0] = 0 // to is open
			return
		}
		call := []uint64{uint64(from), uint64(to)}
		renumber.Call(ctx, mod, call)
		if call[0] == errnoNOTSUP {
			call = []uint64{uint64(to)}
			closeFD.Call(ctx, mod, call)
			if call[0] != 0 {
				stack[0] = call[0]
				return
			}
			st.move(-1, to)
			call = []uint64{uint64(from), uint64(to)}
			renumber.Call(ctx, mod, call)
			if call[0] == errnoNOTSUP { // from is a preopen: to is closed
				st.fds.swap(gFrom, gTo)
				stack[0] = 0
				return
			}
		}
		if call[0] == 0 {
			st.move(int64(from), to)
		}
		stack[0] = call[0]
	}
}

// isPreopen asks wazero's fd_prestat_get, on lent memory, whether fd is
// one of the descriptors it opened before the run (it answers success for
// those alone: a mount's directory, stdin, stdout, stderr).
func isPreopen(ctx context.Context, mod api.Module, prestat api.GoModuleFunction, fd uint32) bool {
	var errno uint64 = errnoFAULT
	lend(mod, 0, 8, func(ptr uint32) {
		call := []uint64{uint64(fd), uint64(ptr)}
		prestat.Call(ctx, mod, call)
		errno = call[0]
	})
	return errno == 0
}

// fixPathOpen records the synchronous-write fdflags of the descriptor a
// path_open made, and its rights: those asked for, within the directory's
// inheriting rights (never refused for asking too much: Go's wasip1
// runtime asks for every right). A directory without PATH_OPEN opens
// nothing, without PATH_CREATE_FILE creates nothing and without
// PATH_FILESTAT_SET_SIZE truncates nothing (ENOTCAPABLE).
func fixPathOpen(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
	open := orig["path_open"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		dir, oflags := uint32(stack[0]), uint16(stack[4])
		base, inheriting := stack[5]&allRights, stack[6]&allRights
		fdflags, result := uint16(stack[7])&syncFdflags, uint32(stack[8])
		d, ok := st.rights[dir]
		if ok && d.enforced {
			need := uint64(rightPathOpen)
			if oflags&oflagCreat != 0 {
				need |= rightPathCreateFile
			}
			if oflags&oflagTrunc != 0 {
				need |= rightPathFilestatSetSize
			}
			if d.base&need != need {
				stack[0] = errnoNOTCAPABLE
				return
			}
			base &= d.inheriting
			inheriting &= d.inheriting
			// wazero opens for writing only with FD_WRITE among them.
			stack[5], stack[6] = base, inheriting
		}
		open.Call(ctx, mod, stack)
		narrowed := base != allRights || inheriting != allRights
		if stack[0] != 0 || (fdflags == 0 && len(st.syncFlags) == 0 && !narrowed && len(st.rights) == 0) {
			return
		}
		fd, ok := mod.Memory().ReadUint32Le(result)
		if !ok {
			return
		}
		st.move(-1, fd)
		if fdflags != 0 {
			if st.syncFlags == nil {
				st.syncFlags = make(map[uint32]uint16)
			}
			st.syncFlags[fd] = fdflags
		}
		if narrowed {
			if st.rights == nil {
				st.rights = make(map[uint32]fdRights)
			}
			st.rights[fd] = fdRights{base, inheriting, d.enforced}
		}
	}
}

// WASI's oflags path_open checks rights for.
const (
	oflagCreat = 1
	oflagTrunc = 8
)

// fdstatRights is the offset of fs_rights_base (u64) in WASI's fdstat;
// fs_rights_inheriting follows it.
const fdstatRights = 8

// fdstatFlags is the offset of fs_flags (u16) in WASI's fdstat.
const fdstatFlags = 2

// fixFdstatGet adds the recorded fdflags to wazero's fdstat and narrows
// its rights (wazero's: all a file or directory can have) to the
// recorded ones.
//
// It translates its descriptor itself (ownFDs; with translate false, for
// fixSetRights, it is given wazero's), saving a call on a hot path.
func fixFdstatGet(orig map[string]api.GoModuleFunction, st *fixState, translate bool) api.GoModuleFunc {
	get := orig["fd_fdstat_get"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if translate && len(st.fds.toWazero) != 0 {
			stack[0] = uint64(st.fds.wazero(uint32(stack[0])))
		}
		fd, result := uint32(stack[0]), uint32(stack[1])
		get.Call(ctx, mod, stack)
		if stack[0] != 0 || (len(st.syncFlags) == 0 && len(st.rights) == 0) {
			return
		}
		mem := mod.Memory()
		if fl, ok := st.syncFlags[fd]; ok {
			if cur, ok := mem.ReadUint16Le(result + fdstatFlags); ok {
				mem.WriteUint16Le(result+fdstatFlags, cur|fl)
			}
		}
		if r, ok := st.rights[fd]; ok {
			base, ok1 := mem.ReadUint64Le(result + fdstatRights)
			inh, ok2 := mem.ReadUint64Le(result + fdstatRights + 8)
			if ok1 && ok2 {
				mem.WriteUint64Le(result+fdstatRights, base&r.base)
				mem.WriteUint64Le(result+fdstatRights+8, inh&r.inheriting)
			}
		}
	}
}

// fixSetRights: wazero answers ENOSYS. The amendment keeps the new rights
// when they are within the descriptor's (wazero's, narrowed by what is
// recorded), and answers ENOTCAPABLE for more.
func fixSetRights(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
	get := fixFdstatGet(orig, st, false)
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		fd, base, inheriting := uint32(stack[0]), stack[1], stack[2]
		var errno, curBase, curInh uint64
		if !lend(mod, 0, 24, func(ptr uint32) {
			call := []uint64{uint64(fd), uint64(ptr)}
			get(ctx, mod, call)
			errno = call[0]
			curBase, _ = mod.Memory().ReadUint64Le(ptr + fdstatRights)
			curInh, _ = mod.Memory().ReadUint64Le(ptr + fdstatRights + 8)
		}) {
			stack[0] = errnoFAULT
			return
		}
		switch {
		case errno != 0:
			stack[0] = errno
		case base&^curBase != 0 || inheriting&^curInh != 0:
			stack[0] = errnoNOTCAPABLE
		default:
			if st.rights == nil {
				st.rights = make(map[uint32]fdRights)
			}
			st.rights[fd] = fdRights{base, inheriting, true}
			stack[0] = 0
		}
	}
}

// fixClose forgets a closed descriptor's fdflags and rights.
func fixClose(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
	closeFD := orig["fd_close"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		fd := uint32(stack[0])
		closeFD.Call(ctx, mod, stack)
		if stack[0] == 0 {
			st.move(-1, fd)
		}
	}
}

// readlinkMax is the longest target fixReadlink reads into lent memory:
// Linux's PATH_MAX.
const readlinkMax = 4096

// fixReadlink: wazero answers ERANGE when the target is longer than the
// buffer; the amendment reads it again into lent memory and keeps the
// buffer's length of it.
func fixReadlink(orig map[string]api.GoModuleFunction, _ *fixState) api.GoModuleFunc {
	readlink := orig["path_readlink"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		p := [6]uint64(stack[:6])
		readlink.Call(ctx, mod, stack)
		if stack[0] != errnoRANGE {
			return
		}
		buf, bufLen, used := uint32(p[3]), uint32(p[4]), uint32(p[5])
		stack[0] = readlinkInto(ctx, mod, readlink, p, buf, bufLen, used)
	}
}

// readlinkInto reads the link p names into lent memory with the length
// kept apart from the target, then copies the target's first bufLen bytes
// into the guest's buffer and bufLen into its result.
func readlinkInto(ctx context.Context, mod api.Module, readlink api.GoModuleFunction, p [6]uint64, buf, bufLen, used uint32) uint64 {
	mem := mod.Memory()
	var errno uint64
	var prefix []byte
	if !lend(mod, buf, readlinkMax+4, func(ptr uint32) {
		st := p
		st[3], st[4], st[5] = uint64(ptr+4), readlinkMax, uint64(ptr)
		readlink.Call(ctx, mod, st[:])
		errno = st[0]
		if errno != 0 {
			return
		}
		n, _ := mem.ReadUint32Le(ptr)
		b, _ := mem.Read(ptr+4, min(n, bufLen))
		prefix = append(prefix, b...)
	}) {
		return errnoRANGE
	}
	if errno != 0 {
		return errno
	}
	if !mem.Write(buf, prefix) || !mem.WriteUint32Le(used, uint32(len(prefix))) {
		return errnoFAULT
	}
	return 0
}

// lookupSymlinkFollow is WASI's LOOKUPFLAGS_SYMLINK_FOLLOW.
const lookupSymlinkFollow = 1

// fixLink: wazero ignores path_link's lookup flags and a trailing slash.
func fixLink(orig map[string]api.GoModuleFunction, _ *fixState) api.GoModuleFunc {
	link := orig["path_link"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if uint32(stack[1])&lookupSymlinkFollow != 0 {
			stack[0] = errnoINVAL
			return
		}
		newPath, newLen := uint32(stack[5]), uint32(stack[6])
		if newLen > 0 {
			if last, ok := mod.Memory().ReadByte(newPath + newLen - 1); ok && last == '/' {
				stack[0] = errnoNOENT
				return
			}
		}
		link.Call(ctx, mod, stack)
		if stack[0] == errnoNOSYS {
			stack[0] = errnoXDEV
		}
	}
}

// crossMount amends a two-path function (path_rename, path_link) that
// wazero answers ENOSYS when its two names are on different mounts
// (different file systems to it), which is its only ENOSYS: every mount's
// file system here links and renames. The errno becomes EXDEV, what
// rename(2) and link(2) answer across file systems, on which a program
// copies instead.
func crossMount(name string) func(map[string]api.GoModuleFunction, *fixState) api.GoModuleFunc {
	return func(orig map[string]api.GoModuleFunction, _ *fixState) api.GoModuleFunc {
		fn := orig[name]
		return func(ctx context.Context, mod api.Module, stack []uint64) {
			fn.Call(ctx, mod, stack)
			if stack[0] == errnoNOSYS {
				stack[0] = errnoXDEV
			}
		}
	}
}

// WASI's FILETYPE_DIRECTORY and FILETYPE_REGULAR_FILE, the first byte of
// an fdstat and byte 16 of a filestat.
const (
	filetypeDirectory   = 3
	filetypeRegularFile = 4
)

// fixAllocate: wazero grows a file with Truncate only when the new end
// is past its size, so on a directory (whose size is a block) it answers
// success. The amendment asks fd_filestat_get, on lent memory, what the
// descriptor is and how long: a directory is EISDIR, and a file already
// long enough is success at once, which is all wazero's own fd_allocate
// would do after the same stat (one fstat a call, not two); a file to
// grow, or an end past 2^63, goes to wazero. A descriptor once found to
// be a regular file goes to wazero at once after, which makes the same
// stat and answers the same.
func fixAllocate(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
	stat, allocate := orig["fd_filestat_get"], orig["fd_allocate"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		fd := stack[0]
		if st.lacks(uint32(fd), rightFdAllocate) {
			stack[0] = errnoNOTCAPABLE
			return
		}
		if fd < 64 && st.regular&(1<<fd) != 0 {
			allocate.Call(ctx, mod, stack)
			return
		}
		var errno, size uint64
		var filetype byte
		if !lend(mod, 0, filestatSize, func(ptr uint32) {
			call := st.call[:]
			call[0], call[1] = fd, uint64(ptr)
			stat.Call(ctx, mod, call)
			errno = call[0]
			filetype, _ = mod.Memory().ReadByte(ptr + filestatFiletype)
			size, _ = mod.Memory().ReadUint64Le(ptr + filestatSizeAt)
		}) {
			stack[0] = errnoFAULT
			return
		}
		if errno == 0 && filetype == filetypeRegularFile && fd < 64 {
			st.regular |= 1 << fd
		}
		tail := int64(stack[1] + stack[2])
		switch {
		case errno != 0:
			stack[0] = errno
		case filetype == filetypeDirectory:
			stack[0] = errnoISDIR
		case tail >= 0 && filetype == filetypeRegularFile && int64(size) >= tail:
			stack[0] = 0
		default:
			allocate.Call(ctx, mod, stack)
			if stack[0] == errnoNOSYS {
				stack[0] = errnoSPIPE // stdio, as posix_fallocate(3) on a pipe
			}
		}
	}
}

// WASI's filestat: 64 bytes, the filetype at 16 and the size at 32.
const (
	filestatSize     = 64
	filestatFiletype = 16
	filestatSizeAt   = 32
)

// fixFdSetTimes: wazero sets a descriptor's times through its file and,
// when the file answers ENOSYS or EPERM, by its path in its file system;
// stdin, stdout and stderr have neither (their file system is nil, a Go
// panic wazero turns into a trap). The amendment answers ENOTSUP for
// them: a preopen below 3 that is not a directory (fd_prestat_get answers
// for preopens alone, and a preopen never moves).
func fixFdSetTimes(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
	set, prestat, get := orig["fd_filestat_set_times"], orig["fd_prestat_get"], orig["fd_fdstat_get"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		fd := uint32(stack[0])
		if st.lacks(fd, rightFdFilestatSetTimes) {
			stack[0] = errnoNOTCAPABLE
			return
		}
		if fd < 3 && isPreopen(ctx, mod, prestat, fd) {
			var filetype byte = filetypeDirectory
			lend(mod, 0, 24, func(ptr uint32) {
				call := []uint64{uint64(fd), uint64(ptr)}
				get.Call(ctx, mod, call)
				filetype, _ = mod.Memory().ReadByte(ptr)
			})
			if filetype != filetypeDirectory {
				stack[0] = errnoNOTSUP
				return
			}
		}
		set.Call(ctx, mod, stack)
	}
}

// fixSetTimes: wazero sends a call with SYMLINK_FOLLOW to its file
// system's Utimens and one without to a file it opens by the path, which
// follows the link. The amendment sends both to Utimens, with the run's
// linkLookup telling a confined mount, for the one call, not to follow.
func fixSetTimes(orig map[string]api.GoModuleFunction, st *fixState) api.GoModuleFunc {
	set := orig["path_filestat_set_times"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if uint32(stack[1])&lookupSymlinkFollow != 0 || st.lookup == nil {
			set.Call(ctx, mod, stack)
			return
		}
		st.lookup.noFollow = true
		defer func() { st.lookup.noFollow = false }()
		stack[1] |= lookupSymlinkFollow
		set.Call(ctx, mod, stack)
	}
}

// WASI's poll_oneoff layout: a subscription is 48 bytes (userdata u64,
// tag u8 at 8, its union from 16: a descriptor's u32 first); an event 32
// (userdata u64, error u16 at 8, type u8 at 10, nbytes u64 at 16, flags
// u16 at 24).
const (
	subscriptionSize = 48
	eventSize        = 32
	eventTypeFdWrite = 2
)

// fixPollOneoff: wazero answers every FD_WRITE subscription with
// ENOTSUP. When every subscription is an FD_WRITE, or an FD_WRITE with
// clocks, the amendment answers at once (a write to a descriptor never
// blocks here): an event per FD_WRITE, ready for an open descriptor and
// EBADF for another, and none for the clocks, which have not expired.
// Any other mix goes to wazero as it is. Subscriptions or events that do
// not fit in memory are EFAULT before anything is read.
func fixPollOneoff(orig map[string]api.GoModuleFunction, _ *fixState) api.GoModuleFunc {
	advise, poll := orig["fd_advise"], orig["poll_oneoff"]
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		in, out, nsub, resultN := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
		mem := mod.Memory()
		if nsub == 0 || mem == nil {
			poll.Call(ctx, mod, stack)
			return
		}
		// wazero sizes both arrays in 32 bits: a count past 2^32/48 wraps
		// to a short buffer it then indexes past, a Go panic it turns into
		// a trap. Either array outside memory is EFAULT, as wazero means
		// it to be.
		size := uint64(mem.Size())
		if uint64(in)+uint64(nsub)*subscriptionSize > size || uint64(out)+uint64(nsub)*eventSize > size {
			stack[0] = errnoFAULT
			return
		}
		subs, _ := mem.Read(in, nsub*subscriptionSize)
		writes := 0
		for i := uint32(0); i < nsub; i++ {
			switch subs[i*subscriptionSize+8] {
			case eventTypeFdWrite:
				writes++
			case 0: // a clock
			default:
				poll.Call(ctx, mod, stack)
				return
			}
		}
		if writes == 0 {
			poll.Call(ctx, mod, stack)
			return
		}
		events, ok := mem.Read(out, uint32(writes)*eventSize)
		if !ok {
			stack[0] = errnoFAULT
			return
		}
		subs = append([]byte(nil), subs...) // out may overlap in
		n := 0
		for i := uint32(0); i < nsub; i++ {
			sub := subs[i*subscriptionSize:]
			if sub[8] != eventTypeFdWrite {
				continue
			}
			ev := events[n*eventSize : (n+1)*eventSize]
			clear(ev)
			copy(ev, sub[:8])
			ev[10] = eventTypeFdWrite
			fd := binary.LittleEndian.Uint32(sub[16:])
			if !fdOpen(ctx, mod, advise, uint64(fd)) {
				binary.LittleEndian.PutUint16(ev[8:], uint16(errnoBADF))
			}
			n++
		}
		if !mem.WriteUint32Le(resultN, uint32(n)) {
			stack[0] = errnoFAULT
			return
		}
		stack[0] = 0
	}
}
