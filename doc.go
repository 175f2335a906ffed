// Package ampoule is Ampoule's launcher as a library: it measures a
// WebAssembly (WASI preview 1) bundle, binds the measurement into evidence
// of the TEE it runs in, and runs the module in wazero behind the
// host-call gate, in a runner process confined by seccomp, with the
// tenant's log encrypted. The launch command is a thin layer of flags and
// printing over Run and Attest; a long-lived server or a containerd shim
// calls the same two functions and gets the same refusals.
//
// # Profiles
//
// Every run has a profile (package profiles), and the profile's name is
// part of the measurement. debug is for a developer's own machine: the
// workload's output and the runtime's log reach the caller in plain text,
// host overrides (Config.Args, Env, Dirs) and a bare module are allowed,
// and compiled code may be cached on disk. staging and production keep
// everything from the host: the workload's output and the runtime's log go
// only into a log encrypted to the manifest's log_recipient (or to each of
// its log_recipients, a team) and signed by
// a key the run's evidence binds; the runner is confined by seccomp; and
// every error Run returns carries a registered code and the run's
// correlation id, nothing else. production runs only in a hardware TEE
// (SEV-SNP or TDX) whose debug policy bit is clear.
//
// Run enforces every refusal a profile implies (host overrides, a disk
// cache, a bare module, a profile the manifest does not allow, a backend
// the profile does not run on, a sealed store without a [sealed] mount,
// an earlier version's sealed store without the consent its key needs):
// no caller can forget one.
//
// # Sealed stores across versions
//
// A store opens for the measurement that sealed it, or for a later
// version whose manifest's [sealed] accept_from names that measurement:
// with key = "broker" where the broker's policy puts both versions in one
// bundle, with key = "tee" under staging and production only with
// Config.SealedHandOn, a hand-on signed by the key the earlier version
// named in hand_on_key. ExportSealed and ImportSealed move a store's
// files out and in, under debug only.
//
// # What the host sees
//
// Under staging and production, what Run returns and writes to
// Config.Warnings is all the host learns: a fixed set of warnings, the
// error's code and Result.Ref. The detail of a failure goes into the
// encrypted log, when the run has one. A program embedding Ampoule must
// print no more than that (errcode.Static formats it).
//
// # The runner re-exec contract
//
// Run starts the workload in a child process: by default the calling
// program's own executable, with a hidden first argument. A program that
// calls Run must therefore call RunnerMain first thing in main, before
// flags are parsed:
//
//	func main() {
//		ampoule.RunnerMain() // returns only in the launcher itself
//		...
//	}
//
// Config.Runner names another executable that honours the contract (a
// launch binary does).
//
// Under staging and production the launcher's own memory holds the run's
// keys: call Protect at the start of main too. It starts the process
// again without the host's GODEBUG and with GOTRACEBACK=none, makes it not
// dumpable with no core file, and turns the signals that would dump its
// stacks into a stop. Run itself makes the process not dumpable, and
// refuses (E5008) to run a protected profile in a process whose
// environment sets GODEBUG or a GOTRACEBACK other than none.
package ampoule
