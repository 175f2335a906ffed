// Package profiles holds Ampoule's run profiles as data.
//
// A profile decides what the host may see of a run and what the run may do:
// debug is for a developer on their own machine, staging and production keep
// everything from the host but a static error code. The profile's name is part
// of the measurement, so a verifier always knows which profile ran.
package profiles

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/tee"
)

// Profile is one row of the profile table. Profiles are values; Get returns a
// fresh copy each time.
type Profile struct {
	// Name is the stable name that enters the measurement.
	Name string `json:"name"`
	// Summary is one line saying who the profile is for.
	Summary string `json:"summary"`

	// StaticErrors: the host sees only a registered code and a correlation id.
	StaticErrors bool `json:"static_errors"`
	// PlainLogs: the workload's output and the runtime's logs go to the
	// terminal in plain text. When false they go to the encrypted channel.
	PlainLogs bool `json:"plain_logs"`
	// PassExitCode: the workload's own exit code becomes the launcher's.
	// When false the launcher exits with the error's class.
	PassExitCode bool `json:"pass_exit_code"`
	// Backends the profile may run on, in order of preference.
	Backends []string `json:"backends"`
	// DefaultBackend is the backend a run asks for when its caller names
	// none: the simulator under debug, tee.Auto (the machine's TEE, falling
	// back to the simulator only where Backends has it) elsewhere.
	DefaultBackend string `json:"default_backend"`
	// AllowTEEDebug: the TEE's debug policy bit may be set. Without it a
	// run that finds the bit set in its own report refuses to start.
	AllowTEEDebug bool `json:"allow_tee_debug"`
	// Seccomp: the runner process is confined by a seccomp filter.
	Seccomp bool `json:"seccomp"`
	// SeccompKills: a system call outside the allowlist kills the runner
	// (otherwise it fails with EPERM).
	SeccompKills bool `json:"seccomp_kills"`
	// AllowBareModule: a .wasm without a manifest may run (a manifest is generated).
	AllowBareModule bool `json:"allow_bare_module"`
	// AllowHostOverrides: --dir and --env on the command line may add to the
	// measured manifest.
	AllowHostOverrides bool `json:"allow_host_overrides"`
	// DiskCache: compiled code is cached on the host's disk in wazero's own
	// cache, unauthenticated. Without it a run uses the authenticated cache
	// (package codecache): a memory tier and MAC'd entries on disk.
	DiskCache bool `json:"disk_cache"`
	// SealedPlain: the host is trusted with a sealed store's plaintext:
	// launch sealed export writes its files out, launch sealed import
	// seals the host's in, and a manifest's [sealed] accept_from alone
	// opens an earlier version's store under key = "tee" (elsewhere the
	// run also needs a hand-on signed by the key that store records).
	// Stores are kept apart by profile, as the profile is measured: this
	// never reaches another profile's store.
	SealedPlain bool `json:"sealed_plain"`
	// MaxHostCalls bounds the host calls of a run; zero means no bound.
	MaxHostCalls uint64 `json:"max_host_calls"`
	// Protected: the launcher's memory stays in it. It takes no GODEBUG
	// or GOTRACEBACK from the host, is not dumpable and writes no core
	// file, and a signal that would make it dump its stacks stops the run
	// instead (the runner is protected in every profile).
	Protected bool `json:"protected"`
}

// Names lists the profiles from least to most strict.
func Names() []string { return []string{"debug", "staging", "production"} }

// All returns every profile, least strict first.
func All() []Profile {
	out := make([]Profile, 0, 3)
	for _, n := range Names() {
		p, _ := Get(n)
		out = append(out, p)
	}
	return out
}

// Get returns the named profile, or an errcode.ProfileUnknown error.
func Get(name string) (Profile, error) {
	switch name {
	case "debug":
		return Profile{
			Name:               "debug",
			Summary:            "a developer's own machine: everything visible, nothing confined",
			PlainLogs:          true,
			PassExitCode:       true,
			Backends:           []string{tee.KindSim, tee.KindSNP, tee.KindTDX},
			DefaultBackend:     tee.KindSim,
			AllowTEEDebug:      true,
			AllowBareModule:    true,
			AllowHostOverrides: true,
			DiskCache:          true,
			SealedPlain:        true,
		}, nil
	case "staging":
		return Profile{
			Name:           "staging",
			Summary:        "production's secrecy on test infrastructure: static errors, encrypted logs",
			StaticErrors:   true,
			Backends:       []string{tee.KindSNP, tee.KindTDX, tee.KindSim},
			DefaultBackend: tee.Auto,
			AllowTEEDebug:  true,
			Seccomp:        true,
			Protected:      true,
		}, nil
	case "production":
		return Profile{
			Name:           "production",
			Summary:        "untrusted hosts: hardware TEE only, static errors, encrypted logs",
			StaticErrors:   true,
			Backends:       []string{tee.KindSNP, tee.KindTDX},
			DefaultBackend: tee.Auto,
			Seccomp:        true,
			SeccompKills:   true,
			Protected:      true,
		}, nil
	}
	return Profile{}, errcode.Errorf(errcode.ProfileUnknown, "no profile %q (the profiles are %s)", name, strings.Join(Names(), ", ")).Host()
}

// AllowsBackend reports whether the profile may run on the named backend.
func (p Profile) AllowsBackend(name string) bool {
	for _, b := range p.Backends {
		if b == name {
			return true
		}
	}
	return false
}

// Warning names one way a profile is weaker than production.
type Warning struct {
	// Name is a stable identifier, such as "plain-logs".
	Name string `json:"name"`
	// Text says what the host or the workload can do because of it.
	Text string `json:"text"`
}

// Warnings lists every relaxation of p against production, by name. An empty
// list means p is as strict as production.
func (p Profile) Warnings() []Warning {
	var w []Warning
	add := func(cond bool, name, text string) {
		if cond {
			w = append(w, Warning{name, text})
		}
	}
	add(!p.StaticErrors, "full-errors", "the host sees full error detail, which may include tenant data")
	add(p.PlainLogs, "plain-logs", "the workload's output and the runtime's logs reach the host in plain text")
	add(p.PassExitCode, "exit-code-passthrough", "the host sees the workload's own exit code")
	add(p.AllowsBackend("sim"), "simulator-allowed", "the insecure software simulator may stand in for a TEE")
	add(p.AllowTEEDebug, "tee-debug-allowed", "a TEE with its debug policy bit set is accepted")
	add(!p.Seccomp, "no-seccomp", "the runtime process is not confined by seccomp")
	add(!p.Protected, "unprotected-launcher", "the launcher takes GODEBUG and GOTRACEBACK from the host, may dump core and its stacks, and the host's processes of its user may read its memory")
	add(p.AllowBareModule, "bare-module", "a module without a manifest may run")
	add(p.AllowHostOverrides, "host-overrides", "--dir and --env may add mounts and variables the manifest does not have")
	add(p.DiskCache, "disk-cache", "compiled code is cached on the host's disk without authentication")
	add(p.SealedPlain, "sealed-plain", "the host may export a sealed store's plaintext, import its own, and an earlier version's TEE-sealed store opens for a manifest that accepts it, without a hand-on")
	return w
}

// WriteTable writes the profiles side by side, a row per setting, as
// launch profiles prints them.
func WriteTable(w io.Writer, all []Profile) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, f func(Profile) string) {
		cells := []string{label}
		for _, p := range all {
			cells = append(cells, f(p))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	yes := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	row("", func(p Profile) string { return p.Name })
	row("host-visible errors", func(p Profile) string {
		if p.StaticErrors {
			return "code + ref (the host's own input in full)"
		}
		return "full detail"
	})
	row("workload output and logs", func(p Profile) string {
		if p.PlainLogs {
			return "plain, to terminal"
		}
		return "encrypted to log_recipient"
	})
	row("exit status", func(p Profile) string {
		if p.PassExitCode {
			return "workload's own"
		}
		return "fixed classes"
	})
	row("backends", func(p Profile) string { return strings.Join(p.Backends, ",") })
	row("default backend", func(p Profile) string { return p.DefaultBackend })
	row("TEE debug bit", func(p Profile) string { return yes(p.AllowTEEDebug) })
	row("seccomp", func(p Profile) string { return yes(p.Seccomp) })
	row("protected launcher", func(p Profile) string { return yes(p.Protected) })
	row("bare .wasm", func(p Profile) string { return yes(p.AllowBareModule) })
	row("--dir/--env/args", func(p Profile) string { return yes(p.AllowHostOverrides) })
	row("compile cache", func(p Profile) string {
		if p.DiskCache {
			return "on disk, unauthenticated"
		}
		return "authenticated"
	})
	tw.Flush()
}

// WriteRelaxations writes the profile's name and summary, and each
// relaxation it makes against production with its warning, as launch
// profiles prints them.
func (p Profile) WriteRelaxations(w io.Writer) {
	fmt.Fprintf(w, "\n%s: %s\n", p.Name, p.Summary)
	ws := p.Warnings()
	if len(ws) == 0 {
		fmt.Fprintln(w, "  no relaxations")
	}
	for _, x := range ws {
		fmt.Fprintf(w, "  warning %s: %s\n", x.Name, x.Text)
	}
}

// Described is a profile with its relaxations' warnings, as launch
// profiles --json prints it.
type Described struct {
	Profile
	Warnings []Warning `json:"warnings"`
}

// Describe is each profile with its warnings, none an empty list.
func Describe(all []Profile) []Described {
	var out []Described
	for _, p := range all {
		w := p.Warnings()
		if w == nil {
			w = []Warning{}
		}
		out = append(out, Described{p, w})
	}
	return out
}
