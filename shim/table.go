package shim

import (
	"fmt"
	"sort"
)

// WASIModule is the import module of WASI preview 1, the only module besides
// AmpouleModule a workload may import from: the one spelling of its name,
// which the runtime registers its gated WASI functions under.
const WASIModule = "wasi_snapshot_preview1"

// AmpouleModule is the import module of Ampoule's own host functions.
const AmpouleModule = "ampoule"

// AmpouleFunctions is the gate's table for the ampoule host module. Each
// capability its names suggest exists, reached without a host function
// (the Why says how), so each function is refused: a module importing one
// fails before it runs rather than at its first call.
func AmpouleFunctions() Table {
	return Table{
		"log":    {Action: Refuse, Why: "the workload's stdout and stderr are its log: sealed to the manifest's log_recipient under staging and production ('launch logs decrypt')"},
		"secret": {Action: Refuse, Why: "the broker releases secrets only to attested runs: the manifest's [secrets] as files under /run/secrets, and the [sealed] mount's key (key = \"broker\")"},
		"seal":   {Action: Refuse, Why: "the manifest's [sealed] mount is sealed storage: plain files to the workload, sealed by the runtime after the run"},
		"attest": {Action: Refuse, Why: "the runtime attests every run before its first instruction (the evidence opens the tenant's log); 'launch attest' makes evidence for a verifier"},
	}
}

// Action is what the gate does with a call.
type Action int

const (
	// Refuse: the function is not exported; a module importing it is
	// refused before it runs.
	Refuse Action = iota
	// Allow: the runtime's implementation runs, confined (paths beneath
	// their preopen, read-only mounts read-only) and under the run's limits.
	Allow
	// Deny: the call returns Rule.Errno at once; no host code runs.
	Deny
	// Trap: the call ends the run with errcode.HostCallTrapped.
	Trap
)

func (a Action) String() string {
	switch a {
	case Refuse:
		return "refuse"
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Trap:
		return "trap"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Rule is one row of the gate table.
type Rule struct {
	Action Action
	// Errno is what a Deny returns.
	Errno Errno
	// Why says, for the table's readers, why the rule is what it is.
	Why string
}

func allow(why string) Rule         { return Rule{Action: Allow, Why: why} }
func deny(e Errno, why string) Rule { return Rule{Action: Deny, Errno: e, Why: why} }
func trap(why string) Rule          { return Rule{Action: Trap, Why: why} }
func (r Rule) String() string {
	if r.Action == Deny {
		return fmt.Sprintf("deny(%d)", r.Errno)
	}
	return r.Action.String()
}

// Table maps each function of WASI preview 1 to its rule. A function absent
// from a table is refused.
type Table map[string]Rule

// Gate returns the host-call gate: every WASI preview 1 function, by name,
// with its rule. It is the same under every profile, debug included: the
// profiles differ in what the host sees of a run and in how the runner is
// confined, never in which host calls a workload may make, so a module that
// runs under debug makes the same calls under production. Each call returns
// a fresh table, which the caller may change.
func Gate() Table {
	const (
		proc  = "process arguments, environment and exit, from the measured manifest"
		clock = "time and randomness: read only, from the host clock and the kernel's random source"
		stdio = "descriptors are stdio and the manifest's preopens only"
		path  = "resolved beneath its preopen by the kernel; read-only mounts refuse writes"
		sock  = "no sockets are ever preopened, so no host socket code need run: an open descriptor is not a socket (ENOTSOCK), another is EBADF, as on a host without sockets"
	)
	return Table{
		"args_get":                allow(proc),
		"args_sizes_get":          allow(proc),
		"environ_get":             allow(proc),
		"environ_sizes_get":       allow(proc),
		"proc_exit":               allow(proc),
		"proc_raise":              trap("raising a signal is how a workload asks to be killed; end the run with a code instead"),
		"sched_yield":             allow("yields the runner's own thread"),
		"clock_res_get":           allow(clock),
		"clock_time_get":          allow(clock),
		"random_get":              allow(clock),
		"poll_oneoff":             allow("sleeps and stdin readiness; wakes when the run ends"),
		"fd_advise":               allow(stdio),
		"fd_allocate":             allow(stdio),
		"fd_close":                allow(stdio),
		"fd_datasync":             allow(stdio),
		"fd_fdstat_get":           allow(stdio),
		"fd_fdstat_set_flags":     allow(stdio),
		"fd_fdstat_set_rights":    allow("narrows a descriptor's rights, which later calls honour"),
		"fd_filestat_get":         allow(stdio),
		"fd_filestat_set_size":    allow(stdio),
		"fd_filestat_set_times":   allow(stdio),
		"fd_pread":                allow(stdio),
		"fd_prestat_dir_name":     allow(stdio),
		"fd_prestat_get":          allow(stdio),
		"fd_pwrite":               allow(stdio),
		"fd_read":                 allow(stdio),
		"fd_readdir":              allow(stdio),
		"fd_renumber":             allow(stdio),
		"fd_seek":                 allow(stdio),
		"fd_sync":                 allow(stdio),
		"fd_tell":                 allow(stdio),
		"fd_write":                allow("stdout and stderr are bounded by the output limit"),
		"path_create_directory":   allow(path),
		"path_filestat_get":       allow(path),
		"path_filestat_set_times": allow(path),
		"path_link":               allow(path),
		"path_open":               allow(path),
		"path_readlink":           allow(path),
		"path_remove_directory":   allow(path),
		"path_rename":             allow(path),
		"path_symlink":            allow(path + "; the link's target is checked when used"),
		"path_unlink_file":        allow(path),
		"sock_accept":             deny(ENOTSOCK, sock),
		"sock_recv":               deny(ENOTSOCK, sock),
		"sock_send":               deny(ENOTSOCK, sock),
		"sock_shutdown":           deny(ENOTSOCK, sock),
	}
}

// Names returns the table's function names, sorted.
func (t Table) Names() []string {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Exported returns the names of the functions the runtime exports: all but
// the refused ones.
func (t Table) Exported() []string {
	var names []string
	for _, n := range t.Names() {
		if t[n].Action != Refuse {
			names = append(names, n)
		}
	}
	return names
}
