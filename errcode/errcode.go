// Package errcode is the registry of Ampoule's static error codes and the only
// place that formats errors the host may see.
//
// Every failure of the launcher that reaches the host carries a Code: a stable
// number, a stable name, a one-line public text and an exit class. Under the
// static-error profiles (staging, production) the host sees only
//
//	launch: E1008 manifest-invalid (ref 7f3a9c0112ab34cd)
//
// and an exit status chosen by the code's Class; the detail, which may contain
// tenant data, goes only to the encrypted log under the same reference. Under
// the debug profile the host sees the full detail and a hint.
package errcode

import (
	"errors"
	"fmt"
	"sort"
)

// Class groups codes into the few exit statuses the host may observe. The set
// is fixed so that an exit status never carries workload data.
type Class int

// The exit classes. The numeric value of each is the process exit status.
const (
	ClassOK          Class = 0
	ClassWorkload    Class = 1   // the workload failed (trap, non-zero exit)
	ClassUsage       Class = 2   // bad command line, bundle, manifest or module
	ClassPolicy      Class = 3   // refused by the profile or the manifest
	ClassLimit       Class = 4   // a resource limit was exceeded
	ClassInternal    Class = 5   // the launcher itself failed
	ClassInterrupted Class = 130 // stopped by SIGINT or SIGTERM
)

// String returns the class's stable name.
func (c Class) String() string {
	switch c {
	case ClassOK:
		return "ok"
	case ClassWorkload:
		return "workload-failed"
	case ClassUsage:
		return "bad-usage"
	case ClassPolicy:
		return "refused-by-policy"
	case ClassLimit:
		return "limit-exceeded"
	case ClassInternal:
		return "internal"
	case ClassInterrupted:
		return "interrupted"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// ExitStatus is the process exit status of the class.
func (c Class) ExitStatus() int { return int(c) }

// Classes lists every class in exit-status order.
func Classes() []Class {
	return []Class{ClassOK, ClassWorkload, ClassUsage, ClassPolicy, ClassLimit, ClassInternal, ClassInterrupted}
}

// Code is a registered error code. Its number and name never change once
// released; Text and Hint may be reworded but never gain workload data.
type Code int

// The registry. Numbers are grouped by class: 1xxx usage, 2xxx workload,
// 3xxx policy, 4xxx limits, 5xxx internal. A missing number is retired (see
// retired) and never given out again.
const (
	Usage                 Code = 1001
	BundleNotFound        Code = 1002
	BundleUnreadable      Code = 1003
	BundleMalformed       Code = 1004
	BundleTooLarge        Code = 1005
	ManifestMissing       Code = 1006
	ManifestSyntax        Code = 1007
	ManifestInvalid       Code = 1008
	ModuleMissing         Code = 1009
	ModuleNotWasm         Code = 1010
	ModuleInvalid         Code = 1011
	ModuleImportDenied    Code = 1012
	DirInvalid            Code = 1013
	ProfileUnknown        Code = 1014
	BackendUnknown        Code = 1015
	LogMalformed          Code = 1016
	LogWrongIdentity      Code = 1017
	LogTampered           Code = 1018
	LogTruncated          Code = 1019
	IdentityInvalid       Code = 1020
	LogSinkUnavailable    Code = 1021
	EvidenceMalformed     Code = 1022
	PolicyInvalid         Code = 1023
	CollateralUnavailable Code = 1024
	SealedStoreBusy       Code = 1025
	LogUnbound            Code = 1026
	LogOtherRun           Code = 1027
	ModuleTooComplex      Code = 1028
	LogToTerminal         Code = 1029
	SealedDirMissing      Code = 1030
	OutputExists          Code = 1031
	ModuleNoStart         Code = 1045
	CacheForeign          Code = 1046
	ArchiveDirInside      Code = 1047
	ResourcePathInvalid   Code = 1060
	SecretValueInvalid    Code = 1061
	SecretNotFound        Code = 1062
	EARInvalid            Code = 1050
	JWKSInvalid           Code = 1051
	SealedImportInvalid   Code = 1035
	InitDirNotEmpty       Code = 1040
	ServerUnavailable     Code = 1070
	ServerSocketRefused   Code = 1071
	InitDataInvalid       Code = 1072
	VMBackendUnavailable  Code = 1073
	FirmwareInvalid       Code = 1078
	KernelInvalid         Code = 1079
	ShimOptionsInvalid    Code = 1080

	WorkloadTrap Code = 2001
	WorkloadExit Code = 2002
	Interrupted  Code = 2003

	ProfileNotAllowed   Code = 3001
	BareModuleRefused   Code = 3002
	HostOverrideRefused Code = 3003
	BackendRefused      Code = 3004
	HostCallTrapped     Code = 3007
	EvidenceRefused     Code = 3008
	TEEUnavailable      Code = 3009
	SealedStoreForeign  Code = 3010
	SealedStoreTampered Code = 3011
	SealingUnavailable  Code = 3012
	BrokerRefused       Code = 3013
	BrokerAnswerInvalid Code = 3014
	TEEDebugRefused     Code = 3015
	SecretRefused       Code = 3036
	SealedAcceptRefused Code = 3018
	SealedPlainRefused  Code = 3019
	SealedHandOnInvalid Code = 3020
	InitDataMismatch    Code = 3021
	InitDataOtherBundle Code = 3022

	MemoryLimit     Code = 4001
	WallTimeLimit   Code = 4002
	OutputLimit     Code = 4003
	OpenFilesLimit  Code = 4004
	FileOutputLimit Code = 4005
	HostCallLimit   Code = 4006
	SealedSizeLimit Code = 4007
	ServerBusy      Code = 4013

	Internal               Code = 5001
	CacheUnavailable       Code = 5002
	ConfinementUnavailable Code = 5003
	ConfinementViolated    Code = 5004
	SealedStoreIO          Code = 5005
	WorkspaceUnavailable   Code = 5006
	BrokerUnavailable      Code = 5007
	ProtectionUnavailable  Code = 5008
	ServerProtocol         Code = 5019
)

type entry struct {
	code  Code
	name  string
	class Class
	text  string
	hint  string
}

// registry is never modified; All returns copies.
var registry = []entry{
	{Usage, "usage", ClassUsage, "the command line is not valid", "run 'launch help' or 'launch COMMAND --help'"},
	{BundleNotFound, "bundle-not-found", ClassUsage, "the bundle does not exist", "pass a bundle directory, a .tar bundle or (debug only) a .wasm module"},
	{BundleUnreadable, "bundle-unreadable", ClassUsage, "the bundle could not be read", "check the bundle's permissions"},
	{BundleMalformed, "bundle-malformed", ClassUsage, "the bundle is not a well-formed directory or tar archive", "a bundle holds ampoule.toml and the module at its top level, nothing else"},
	{BundleTooLarge, "bundle-too-large", ClassUsage, "the bundle or one of its files is larger than allowed", "see 'Bundle' in README.md for the size limits"},
	{ManifestMissing, "manifest-missing", ClassUsage, "the bundle has no ampoule.toml", "add an ampoule.toml beside the module; see 'Manifest' in README.md"},
	{ManifestSyntax, "manifest-syntax", ClassUsage, "ampoule.toml is not valid TOML", "fix the TOML syntax at the line shown"},
	{ManifestInvalid, "manifest-invalid", ClassUsage, "ampoule.toml has an unknown key, a wrong type or a bad value", "see 'Manifest' in README.md for the keys and their types"},
	{ModuleMissing, "module-missing", ClassUsage, "the module named by the manifest is not in the bundle", "put the module in the bundle or set 'module' in ampoule.toml"},
	{ModuleNotWasm, "module-not-wasm", ClassUsage, "the module is not a WebAssembly binary", "build the module for GOOS=wasip1 GOARCH=wasm (or another WASI preview 1 target)"},
	{ModuleInvalid, "module-invalid", ClassUsage, "the module failed to decode or validate", "rebuild the module; it must be a valid WebAssembly 2.0 binary"},
	{ModuleImportDenied, "module-import-denied", ClassUsage, "the module imports a function the runtime does not provide", "only the wasi_snapshot_preview1 functions the gate allows may be imported; run 'launch gate'"},
	{DirInvalid, "dir-invalid", ClassUsage, "a directory mount is malformed or its host directory is missing", "write mounts as HOST::GUEST or HOST::GUEST::rw; the host directory must exist"},
	{ProfileUnknown, "profile-unknown", ClassUsage, "no such profile", "run 'launch profiles' to list the profiles"},
	{BackendUnknown, "backend-unknown", ClassUsage, "no such backend", "the backends are: auto, sim, snp, tdx"},
	{LogMalformed, "log-malformed", ClassUsage, "the file is not an ampoule log", "pass the file that 'launch run --log-out' wrote"},
	{LogWrongIdentity, "log-wrong-identity", ClassUsage, "the identity does not open this log, or its header was changed", "pass the identity whose recipient the bundle's manifest names"},
	{LogTampered, "log-tampered", ClassUsage, "a log record was dropped, repeated, reordered, spliced in or altered", "the host's copy of the log cannot be trusted; records shown before this point are genuine"},
	{LogTruncated, "log-truncated", ClassUsage, "the log ends before its end record", "the run may still be going (use --follow) or the host cut the log short"},
	{IdentityInvalid, "identity-invalid", ClassUsage, "the identity file cannot be read", "make one with 'launch keygen -o FILE'"},
	{LogSinkUnavailable, "log-sink-unavailable", ClassUsage, "the log sink cannot be opened", "--log-out takes a file path, unix:SOCKET or - for stderr"},
	{EvidenceMalformed, "evidence-malformed", ClassUsage, "the file is not an evidence envelope", "pass the JSON that 'launch attest' wrote"},
	{PolicyInvalid, "policy-invalid", ClassUsage, "the verification policy cannot be read", "start from 'launch policy new --from BUNDLE'"},
	{CollateralUnavailable, "collateral-unavailable", ClassUsage, "Intel's collateral for the quote could not be fetched", "check the network path to the PCS, or pass --pcs-url with a mirror"},
	{SealedStoreBusy, "sealed-store-busy", ClassUsage, "another run holds the sealed store", "wait for the other run to end, or pass --sealed FILE for another store"},
	{LogUnbound, "log-unbound", ClassUsage, "the log is not signed by the runtime key its evidence binds", "the host may have written or replaced this log: nothing in it comes from the run"},
	{LogOtherRun, "log-other-run", ClassUsage, "the log is another run's: its reference or its evidence's nonce is not the one given", "the host may have handed over an older log; ask for the log of the reference it showed"},
	{ModuleTooComplex, "module-too-complex", ClassUsage, "the module is beyond the runtime's structure limits (nesting, functions, locals, body size, segments), so it was not compiled", "split deeply nested or huge functions; see 'Bundle' in README.md for the limits"},
	{LogToTerminal, "log-to-terminal", ClassUsage, "the encrypted log would be written to a terminal", "pass --log-out FILE, or redirect stderr to a file or a pipe"},
	{SealedDirMissing, "sealed-dir-missing", ClassUsage, "the directory of the sealed store does not exist", "create the directory (mkdir -p -m 700 DIR), or pass --sealed FILE in one that exists"},
	{OutputExists, "output-exists", ClassUsage, "the output file exists, and is not overwritten", "choose a new file, or remove the old one (launch run takes --force for --log-out)"},
	{ModuleNoStart, "module-no-start", ClassUsage, "the module exports no _start function () -> (), so it has nothing to run", "build it as a WASI command (a Go main package with GOOS=wasip1; clang or Rust's default wasip1 target), not a reactor or library"},
	{CacheForeign, "cache-foreign", ClassUsage, "the directory does not look like Ampoule's compile cache", "name the compile cache's own directory; launch removes nothing from any other"},
	{ArchiveDirInside, "archive-dir-inside", ClassUsage, "a .tar bundle mounts a relative directory that the archive itself holds", "a .tar bundle's relative dirs are host directories beside the archive; unpack it and run the directory"},
	{ResourcePathInvalid, "resource-path-invalid", ClassUsage, "the resource path is not REPO/TYPE/TAG, or is the broker's own", "write three segments of 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-', such as default/tenant/api-key; the repository ampoule is the broker's"},
	{SecretValueInvalid, "secret-value-invalid", ClassUsage, "the secret's value is empty, larger than the broker stores, or could not be read", "pass a file of 1 byte to 64 KiB, or - to read it from stdin; a value is never taken from the command line"},
	{SecretNotFound, "secret-not-found", ClassUsage, "the broker holds no secret at the path", "'launch broker secret list --db DB' lists the paths it holds"},
	{EARInvalid, "ear-invalid", ClassUsage, "the EAR token cannot be read, is not signed by a key of the set given, or has expired", "pass the token the broker answered at /kbs/v0/attest, with the broker's keys (GET /.well-known/jwks.json), before it expires"},
	{JWKSInvalid, "jwks-invalid", ClassUsage, "the JSON Web Key Set cannot be read or fetched, or holds no ES256 key", "pass the broker's set: a file saved from, or the URL of, its /.well-known/jwks.json"},
	{SealedImportInvalid, "sealed-import-invalid", ClassUsage, "the directory to import into a sealed store holds what a store cannot (a device, a socket, a pipe) or more than the mount's max_size", "import a directory of plain files, directories and links within sealed.max_size"},
	{InitDirNotEmpty, "init-dir-not-empty", ClassUsage, "launch init makes a new bundle's directory, and the one named exists and is not empty", "choose another NAME, or empty the directory: launch init never overwrites a file"},
	{ServerUnavailable, "server-unavailable", ClassUsage, "no 'launch serve' answers at the socket given to --server", "start 'launch serve --listen unix:PATH', or run without --server"},
	{ServerSocketRefused, "server-socket-refused", ClassUsage, "the socket 'launch serve --listen' names could not be made, or a file that is not a socket is in its place", "pass --listen unix:PATH with a new path in a directory that exists; a socket left by a stopped server is replaced"},

	{InitDataInvalid, "init-data-invalid", ClassUsage, "the init-data document cannot be read", "pass the init-data.toml that 'launch vm build' wrote"},
	{VMBackendUnavailable, "vm-backend-unavailable", ClassUsage, "the virtual machine could not be built or started: QEMU, the kernel, its modules or the firmware is missing or unusable", "install qemu-system-x86 and linux-image-amd64 (and ovmf for snp and tdx), or pass --kernel, --firmware and --qemu"},
	{FirmwareInvalid, "firmware-invalid", ClassUsage, "the firmware image cannot be measured: it is not whole 4 KiB pages, its OVMF footer table or SEV metadata is malformed, or it lacks what the launch needs (the kernel-hashes section for a direct-boot kernel, the SEV-ES reset vector for more than one vCPU)", "pass an SEV-SNP OVMF built from edk2's OvmfPkg/AmdSev (AMDSEV.fd), the file given to 'launch vm run --firmware'"},
	{KernelInvalid, "kernel-invalid", ClassUsage, "the guest kernel cannot be measured: it is not a Linux bzImage with an EFI stub (a PE/COFF image whose headers, sections and certificate table lie within it), or its initramfs does not fit below the VM's low memory", "pass the kernel 'launch vm run --kernel' boots: Debian's /boot/vmlinuz-* (linux-image-amd64), or give the VM more --memory"},
	{ShimOptionsInvalid, "shim-options-invalid", ClassUsage, "the containerd shim's settings (its runtime's options in containerd's config, or containerd's environment) have an unknown key or a bad value, so the shim did not start the container", "the shim reads only Linger (a Go duration) and Warm (true or false): in containerd 1.7 and 2.x from the runtime's options table, in 1.6 from the TOML file the table's ConfigPath names (see deploy/kubernetes)"},

	{WorkloadTrap, "workload-trap", ClassWorkload, "the workload trapped", "the wasm stack trace shows where; under staging and production it goes to the tenant's log"},
	{WorkloadExit, "workload-exit", ClassWorkload, "the workload exited with a non-zero status", "the workload's own output says why; under staging and production it goes to the tenant's log"},
	{Interrupted, "interrupted", ClassInterrupted, "the run was stopped by a signal", ""},

	{ProfileNotAllowed, "profile-not-allowed", ClassPolicy, "the manifest does not allow this profile", "add the profile to 'profiles' in ampoule.toml, or choose one it lists"},
	{BareModuleRefused, "bare-module-refused", ClassPolicy, "a bare module without a manifest runs only under the debug profile", "make a bundle: a directory with ampoule.toml and the module"},
	{HostOverrideRefused, "host-override-refused", ClassPolicy, "--dir, --env, --trace-calls and workload arguments are for debug runs only; other profiles run the measured manifest as it is and show nothing of it", "put the mount, variable or argument in ampoule.toml"},
	{BackendRefused, "backend-refused", ClassPolicy, "the profile does not allow this backend", "run 'launch profiles' to see which backends each profile allows"},
	{EvidenceRefused, "evidence-refused", ClassPolicy, "the evidence does not satisfy the policy", "the reasons say which check failed"},
	{TEEUnavailable, "tee-unavailable", ClassPolicy, "no trusted execution environment is available for this profile", "run 'launch platform info'; the debug and staging profiles may use --backend sim"},
	{SealedStoreForeign, "sealed-store-foreign", ClassPolicy, "the sealed store was sealed under another measurement or on another machine", "a store opens only for the measurement that sealed it, or a later version whose [sealed] accept_from names that measurement (with key = \"broker\", one the broker's policy puts in the same bundle); under debug, launch sealed export and import move its files; or pass --sealed FILE to start another store"},
	{SealedStoreTampered, "sealed-store-tampered", ClassPolicy, "the sealed store was altered, truncated or is not a sealed store", "the host's copy cannot be trusted and was left as it is; restore a good copy or pass --sealed FILE to start another store"},
	{SealingUnavailable, "sealing-unavailable", ClassPolicy, "the backend gives no sealing key for the manifest's sealed mount", "TDX has no local sealing key (a broker releases one); run on SEV-SNP, or without [sealed]"},
	{BrokerRefused, "broker-refused", ClassPolicy, "the tenant's broker judged the run's evidence and released nothing", "the broker's audit trail says why; its policy must list this measurement, profile and backend"},
	{BrokerAnswerInvalid, "broker-answer-invalid", ClassPolicy, "the broker's answer is malformed or not signed by the broker the manifest pins", "check [broker] key in ampoule.toml against 'launch broker key'; a host in the middle may have altered the answer"},
	{TEEDebugRefused, "tee-debug-refused", ClassPolicy, "the TEE lets its host debug the guest (its debug policy bit is set), which the profile does not allow, so nothing ran", "launch the confidential VM with debugging off (SEV-SNP guest policy bit 19, TDX TD attribute DEBUG), or run under staging"},
	{SecretRefused, "secret-refused", ClassPolicy, "the tenant's broker affirmed the run's evidence and released none of the manifest's secrets: its policy grants one of them to no run like this one, or it holds none there, so nothing ran", "grant each [secrets] path to this measurement, profile and backend in the policy's [[grants]] ('launch policy new --from BUNDLE' writes them), and store it with 'launch broker secret put'"},
	{SealedAcceptRefused, "sealed-accept-refused", ClassPolicy, "the run was given an earlier version's TEE-sealed store, which its [sealed] accept_from names, without the hand-on that staging and production need: a manifest alone is no consent, as any manifest can name a measurement", "sign one with launch sealed sign, using the key whose public half the earlier version's hand_on_key names, and pass it with --hand-on FILE; or use key = \"broker\" with both versions in one bundle of the broker's policy"},
	{SealedHandOnInvalid, "sealed-hand-on-invalid", ClassPolicy, "the hand-on is malformed, or does not hand this store on to this run: another store's, another run's, or not signed by the hand_on_key the store records", "sign the hand-on for the store's measurement and this bundle under this profile (launch sealed sign)"},
	{SealedPlainRefused, "sealed-plain-refused", ClassPolicy, "launch sealed export and import put a store's plaintext in the host's hands, which only the debug profile allows", "run them under --profile debug, for the debug profile's own stores"},
	{InitDataMismatch, "init-data-mismatch", ClassPolicy, "the init-data the launcher was handed is not the one its VM was launched with (its digest is not the report's HOST_DATA or MRCONFIGID), so nothing ran", "launch the VM with the digests 'launch vm build' printed (host-data= for SEV-SNP, mrconfigid= for TDX), or use 'launch vm run'"},
	{InitDataOtherBundle, "init-data-other-bundle", ClassPolicy, "the init-data names another bundle measurement or profile than the run's, so nothing ran", "build the VM again with 'launch vm build' for this bundle and profile"},
	{HostCallTrapped, "host-call-trapped", ClassPolicy, "the workload called a host function that the gate traps", "run 'launch gate' to see which host calls the gate allows"},

	{MemoryLimit, "memory-limit", ClassLimit, "the workload reached its memory limit", "raise limits.memory in ampoule.toml"},
	{WallTimeLimit, "wall-time-limit", ClassLimit, "the workload ran longer than its wall-time limit", "raise limits.wall_time in ampoule.toml"},
	{OutputLimit, "output-limit", ClassLimit, "the workload wrote more output than its limit", "raise limits.output in ampoule.toml"},
	{OpenFilesLimit, "open-files-limit", ClassLimit, "the workload opened more files at once than its limit", "raise limits.open_files in ampoule.toml"},
	{FileOutputLimit, "file-output-limit", ClassLimit, "the workload wrote more into files than its limit", "raise limits.file_output in ampoule.toml"},
	{HostCallLimit, "host-call-limit", ClassLimit, "the workload made more host calls than its profile allows", "run 'launch profiles' to see each profile's limits"},
	{SealedSizeLimit, "sealed-size-limit", ClassLimit, "the workload left more in its sealed mount than its max_size, so the run's changes were not sealed", "raise sealed.max_size in ampoule.toml; the previous store was kept"},
	{ServerBusy, "server-busy", ClassLimit, "the server's queue of runs is full, or it is stopping, so the run was not started", "try again later, or start 'launch serve' with a larger --queue or --max-runs"},

	{Internal, "internal", ClassInternal, "the launcher failed", "report this with the reference shown"},
	{CacheUnavailable, "cache-unavailable", ClassInternal, "the compilation cache could not be opened", "pass --cache-dir DIR with a writable directory, or --no-cache"},
	{ConfinementUnavailable, "confinement-unavailable", ClassInternal, "the runner could not be confined (seccomp), so nothing ran", "run on Linux/amd64 with seccomp enabled in the kernel, or use the debug profile"},
	{ConfinementViolated, "confinement-violated", ClassInternal, "the runner made a system call outside its allowlist and was killed", "report this with the reference shown; 'launch run --profile debug --audit' lists the calls a run makes"},
	{SealedStoreIO, "sealed-store-io", ClassInternal, "the sealed store could not be read or written", "check the directory of --sealed FILE; a failed write leaves the previous store"},
	{WorkspaceUnavailable, "workspace-unavailable", ClassInternal, "no memory-backed directory for the sealed mount's plaintext", "mount a tmpfs at /dev/shm or set XDG_RUNTIME_DIR to one; the plaintext never goes to a disk"},
	{BrokerUnavailable, "broker-unavailable", ClassInternal, "the tenant's broker could not be reached or failed", "check that the broker in [broker] url runs and is reachable from this machine"},
	{ProtectionUnavailable, "protection-unavailable", ClassInternal, "the launcher could not keep its memory from core files, tracebacks and other processes, so nothing ran", "run on Linux, where prctl(PR_SET_DUMPABLE) and setrlimit(RLIMIT_CORE) are always available"},
	{ServerProtocol, "server-protocol", ClassInternal, "the connection between 'launch run --server' and 'launch serve' broke or carried a malformed message", "check that client and server are the same version of launch; the server's run, if it started, was stopped"},
}

// retired holds the numbers and names of codes withdrawn from the registry.
// Neither is ever given to another code, so a code in an old log or script
// never comes to mean something else; docs/errors.md lists them.
var retired = []struct {
	code      Code
	name, why string
}{
	{3005, "disk-cache-refused", "no longer returned: staging and production keep compiled code in an authenticated cache (a memory tier in the VM, entries on the host's disk under a MAC the TEE keys), so --cache-dir is no longer refused"},
	{3006, "manifest-limit-refused", "never returned: a manifest limit outside the range the runtime allows is refused when the manifest is read, as E1008 manifest-invalid"},
}

func (c Code) entry() (entry, bool) {
	for _, e := range registry {
		if e.code == c {
			return e, true
		}
	}
	return entry{}, false
}

// Registered reports whether c is in the registry.
func (c Code) Registered() bool { _, ok := c.entry(); return ok }

// Name is the code's stable name, such as "manifest-invalid".
func (c Code) Name() string {
	if e, ok := c.entry(); ok {
		return e.name
	}
	return "unregistered"
}

// Class is the code's exit class. Unregistered codes are internal.
func (c Code) Class() Class {
	if e, ok := c.entry(); ok {
		return e.class
	}
	return ClassInternal
}

// Text is the code's public one-line description. It never contains workload data.
func (c Code) Text() string {
	e, _ := c.entry()
	return e.text
}

// Hint is the code's default advice to the user; it may be empty.
func (c Code) Hint() string {
	e, _ := c.entry()
	return e.hint
}

// String returns "E1008 manifest-invalid".
func (c Code) String() string { return fmt.Sprintf("E%04d %s", int(c), c.Name()) }

// All returns every registered code in numeric order.
func All() []Code {
	out := make([]Code, len(registry))
	for i, e := range registry {
		out[i] = e.code
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Error is an error with a registered code. Its message is detail for the
// tenant and the developer: it may hold tenant data and must reach the host
// only under the debug profile.
type Error struct {
	Code Code
	msg  string
	hint string
	err  error
	// host marks an error about the host's own input (Host).
	host bool
}

// Errorf returns an *Error with code c and a message formatted as fmt.Errorf
// does (so %w wraps).
func Errorf(c Code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: c, msg: err.Error(), err: errors.Unwrap(err)}
}

// Wrap returns an *Error with code c around err. The message is err's.
func Wrap(c Code, err error) *Error {
	return &Error{Code: c, msg: err.Error(), err: err}
}

// WithHint returns a copy of e whose hint replaces the code's default hint.
func (e *Error) WithHint(hint string) *Error {
	c := *e
	c.hint = hint
	return &c
}

// Host returns a copy of e marked as about the host's own input: its
// command line, flags, paths, sockets, environment and machine, made
// before or beside the workload and holding nothing derived from the
// bundle, manifest, module or workload. Static shows such an error's
// detail and hint under every profile, since the host already knows all
// it says. Mark an error only where it is made, from the host's input
// alone; an error wrapping one that is marked is not marked itself.
func (e *Error) Host() *Error {
	c := *e
	c.host = true
	return &c
}

// IsHost reports whether the *Error in err's chain (From's) is marked as
// about the host's own input.
func IsHost(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.host
}

// Error returns the detailed message.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the wrapped error, if any.
func (e *Error) Unwrap() error { return e.err }

// Hint returns the specific hint if one was set, else the code's default.
func (e *Error) Hint() string {
	if e.hint != "" {
		return e.hint
	}
	return e.Code.Hint()
}

// From returns the *Error in err's chain, or wraps err as Internal.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(Internal, err)
}

// Detailed formats err for a developer's terminal:
//
//	launch: error: E1008 manifest-invalid: ampoule.toml:3: limits.memory: ...
//	launch: hint: ...
func Detailed(err error) string {
	e := From(err)
	s := fmt.Sprintf("launch: error: %s: %s\n", e.Code, e.msg)
	if h := e.Hint(); h != "" {
		s += "launch: hint: " + h + "\n"
	}
	return s
}

// Static formats err for a host that must learn nothing but the code:
//
//	launch: E1008 manifest-invalid (ref 7f3a9c0112ab34cd)
//
// ref is the run's correlation id. An error about the host's own input
// (IsHost) is shown as Detailed shows it, with the ref on its first line:
// it holds nothing the host did not give.
func Static(err error, ref string) string {
	if IsHost(err) {
		e := From(err)
		s := fmt.Sprintf("launch: error: %s: %s (ref %s)\n", e.Code, e.msg, ref)
		if h := e.Hint(); h != "" {
			s += "launch: hint: " + h + "\n"
		}
		return s
	}
	return fmt.Sprintf("launch: %s (ref %s)\n", From(err).Code, ref)
}
