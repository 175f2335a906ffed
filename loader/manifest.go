package loader

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/resource"
	"github.com/ampoule-run/ampoule/internal/suggest"
	"github.com/ampoule-run/ampoule/profiles"
)

// ManifestName is the manifest's file name inside a bundle.
const ManifestName = "ampoule.toml"

// DefaultModule is the module's file name when the manifest names none.
const DefaultModule = "module.wasm"

// Bounds on what a manifest may say.
const (
	MaxManifestBytes = 64 << 10
	MaxArgs          = 1024
	MaxEnv           = 1024
	MaxDirs          = 64
	MaxStringBytes   = 4096
	// MaxSecrets bounds [secrets].
	MaxSecrets = 16

	// PageSize is the WebAssembly page size.
	PageSize = 64 << 10
	// MaxMemoryBytes is the whole 32-bit address space.
	MaxMemoryBytes = 65536 * PageSize
)

// Defaults applied when the manifest sets no limit. A runaway allocation ends
// at DefaultMemory, long before wasm's 4 GiB.
const (
	DefaultMemory   = 256 << 20
	DefaultWallTime = 5 * time.Minute
	DefaultOutput   = 64 << 20
	// DefaultOpenFiles bounds descriptors the workload opens itself
	// (stdio and preopens do not count).
	DefaultOpenFiles = 256
	// DefaultFileOutput bounds the bytes written into files in all.
	DefaultFileOutput = 1 << 30
	// MaxOpenFiles is the most a manifest may ask for.
	MaxOpenFiles = 4096
	// DefaultSealedSize bounds a sealed mount's contents when the manifest
	// sets no max_size; MaxSealedSize is the most it may ask for (the
	// store is held in memory while it is sealed or opened).
	DefaultSealedSize = 64 << 20
	MaxSealedSize     = 1 << 30
)

// DefaultLimits are the limits of a manifest that sets none.
func DefaultLimits() Limits {
	return Limits{MemoryBytes: DefaultMemory, WallTime: DefaultWallTime, OutputBytes: DefaultOutput,
		OpenFiles: DefaultOpenFiles, FileOutputBytes: DefaultFileOutput}
}

// Manifest is a validated ampoule.toml with defaults applied.
type Manifest struct {
	Name    string
	Version string
	// Module is the module's file name inside the bundle.
	Module string
	// Args are passed to the workload after its name (argv[0] is Name).
	Args []string
	// Env holds the workload's environment.
	Env map[string]string
	// Dirs are preopened directories, in the order given.
	Dirs []Mount
	// Profiles the bundle may run under.
	Profiles []string
	Limits   Limits
	// LogRecipient is the tenant's log public key ("alog1..."); under
	// staging and production everything the run says is sealed to it.
	LogRecipient string
	// LogRecipients are a team's log public keys (log_recipients), 1 to
	// MaxLogRecipients of them, distinct, in the manifest's order; the log
	// opens with any one's identity. A manifest sets this or LogRecipient,
	// never both.
	LogRecipients []string
	// Sealed is the sealed-storage mount, or nil: files the workload leaves
	// under it reach the host's disk only encrypted with a key bound to
	// the measurement.
	Sealed *Sealed
	// Broker is the tenant's key broker, or nil.
	Broker *Broker
	// Entry names the function a WASI reactor exports for the run to
	// call after _initialize, in place of a command's _start; "" for a
	// command.
	Entry string
	// Stdin is StdinHost, StdinNone or "" (the manifest does not say):
	// see HostStdin.
	Stdin string
	// Secrets maps a guest name, a file under SecretsDir, to the resource
	// path ("default/tenant/api-key") the manifest's broker releases it
	// under; nil without [secrets], which needs a [broker]. A run fetches
	// every one before the workload starts, or does not start it.
	Secrets map[string]string
}

// SecretsDir is where the guest reads its [secrets], each a read-only file
// held in memory: no mount of the manifest may be there or beneath it.
const SecretsDir = "/run/secrets"

// What a manifest's stdin may say.
const (
	// StdinHost: the workload reads the host's stdin, in every profile.
	StdinHost = "host"
	// StdinNone: the workload's stdin is empty (end of file at once), in
	// every profile.
	StdinNone = "none"
)

// HostStdin reports whether the workload reads the host's stdin under
// profile p: as the manifest says, and where it does not, only under a
// profile that lets the host add to the manifest (debug). What the host
// writes there is input the measurement does not cover, so a staging or
// production run takes it only from a manifest that asks for it, which
// the measurement does cover.
func (m *Manifest) HostStdin(p profiles.Profile) bool {
	switch m.Stdin {
	case StdinHost:
		return true
	case StdinNone:
		return false
	}
	return p.AllowHostOverrides
}

// Broker is the tenant's key broker: where it is and the key its answers
// must be signed with.
type Broker struct {
	URL string
	// Key is the broker's Ed25519 public key.
	Key []byte
}

// Where a sealed mount's key comes from.
const (
	// SealedKeyTEE: the TEE derives it (SEV-SNP, the simulator).
	SealedKeyTEE = "tee"
	// SealedKeyBroker: the manifest's broker releases it to the run's
	// verified evidence (TDX, which has no sealing key, or a store that
	// must open on any machine).
	SealedKeyBroker = "broker"
)

// Sealed is a manifest's sealed-storage mount.
type Sealed struct {
	// Guest is the mount's absolute, clean path in the guest.
	Guest string
	// MaxBytes bounds the mount's contents: files, directories, names.
	MaxBytes int64
	// Key is where the sealing key comes from: SealedKeyTEE or
	// SealedKeyBroker.
	Key string
	// AcceptFrom are the measurements of earlier versions whose stores
	// this one takes over (TOML: accept_from, hex): distinct, each
	// MeasurementSize bytes, in the manifest's order. It is measured, so a
	// verifier sees what a run may read; ampoule.Run says where it is
	// honoured.
	AcceptFrom []Measurement
	// HandOnKey is the tenant's Ed25519 public key (TOML: hand_on_key, 64
	// hex digits), or nil: under key = "tee", a store this version seals
	// is handed on, under staging and production, only to a later version
	// for which the key's holder signed a hand-on. Measured.
	HandOnKey []byte
}

// MaxAcceptFrom bounds [sealed] accept_from.
const MaxAcceptFrom = 64

// Mount is a host directory preopened in the guest.
type Mount struct {
	Host     string
	Guest    string
	Writable bool
}

// String returns the mount as written in a manifest: HOST::GUEST[::rw].
func (m Mount) String() string {
	if m.Writable {
		return m.Host + "::" + m.Guest + "::rw"
	}
	return m.Host + "::" + m.Guest
}

// Limits bound what a run may consume.
type Limits struct {
	// MemoryBytes bounds linear memory; a multiple of PageSize.
	MemoryBytes uint64
	// WallTime bounds the run's duration.
	WallTime time.Duration
	// OutputBytes bounds stdout and stderr together.
	OutputBytes int64
	// OpenFiles bounds the files and directories open at once.
	OpenFiles int
	// FileOutputBytes bounds what is written into files, in all.
	FileOutputBytes int64
}

// MemoryPages is the memory limit in 64 KiB pages.
func (l Limits) MemoryPages() uint32 { return uint32(l.MemoryBytes / PageSize) }

// AllowsProfile reports whether the manifest lists the profile.
func (m *Manifest) AllowsProfile(name string) bool {
	for _, p := range m.Profiles {
		if p == name {
			return true
		}
	}
	return false
}

// rawManifest is the TOML shape. Pointers and `any` let validation tell a
// missing key from a zero value and report wrong types itself.
type rawManifest struct {
	Name      *string           `toml:"name"`
	Version   *string           `toml:"version"`
	Module    *string           `toml:"module"`
	Args      []string          `toml:"args"`
	Env       map[string]string `toml:"env"`
	Dirs      []string          `toml:"dirs"`
	Profiles  []string          `toml:"profiles"`
	Limits    *rawLimits        `toml:"limits"`
	LogRecip  *string           `toml:"log_recipient"`
	LogRecips []string          `toml:"log_recipients"`
	Sealed    *rawSealed        `toml:"sealed"`
	Broker    *rawBroker        `toml:"broker"`
	Stdin     *string           `toml:"stdin"`
	Entry     *string           `toml:"entry"`
	Secrets   map[string]any    `toml:"secrets"`
}

type rawSealed struct {
	Mount      *string  `toml:"mount"`
	MaxSize    any      `toml:"max_size"`
	Key        *string  `toml:"key"`
	AcceptFrom []string `toml:"accept_from"`
	HandOnKey  *string  `toml:"hand_on_key"`
}

type rawBroker struct {
	URL *string `toml:"url"`
	Key *string `toml:"key"`
}

type rawLimits struct {
	Memory     any     `toml:"memory"`
	WallTime   *string `toml:"wall_time"`
	Output     any     `toml:"output"`
	OpenFiles  any     `toml:"open_files"`
	FileOutput any     `toml:"file_output"`
}

// ParseManifest decodes and validates a manifest. file names the manifest in
// errors ("ampoule.toml", or a path). Every error is an *errcode.Error naming
// the file, the line and the key, with a hint.
func ParseManifest(file string, data []byte) (*Manifest, error) {
	if len(data) > MaxManifestBytes {
		return nil, errcode.Errorf(errcode.BundleTooLarge, "%s is %d bytes, more than the %d allowed", file, len(data), MaxManifestBytes).
			WithHint("a manifest is a few lines of TOML; keep it under 64 KiB")
	}
	if !utf8.Valid(data) {
		return nil, errcode.Errorf(errcode.ManifestSyntax, "%s is not UTF-8 text", file)
	}
	lines, err := keyLines(data)
	if err != nil {
		return nil, syntaxError(file, data, err)
	}
	var raw rawManifest
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, decodeError(file, err)
	}
	v := validator{file: file, lines: lines}
	m := v.manifest(&raw)
	if v.err != nil {
		return nil, v.err
	}
	return m, nil
}

// validator records the first error, located by key.
type validator struct {
	file  string
	lines map[string]int
	err   error
}

func (v *validator) fail(key, hint, format string, args ...any) {
	if v.err != nil {
		return
	}
	where := v.file
	if line, ok := v.lines[key]; ok {
		where = fmt.Sprintf("%s:%d", v.file, line)
	}
	e := errcode.Errorf(errcode.ManifestInvalid, "%s: %s: %s", where, key, fmt.Sprintf(format, args...))
	if hint != "" {
		e = e.WithHint(hint)
	}
	v.err = e
}

func (v *validator) str(key string, s string) bool {
	if len(s) > MaxStringBytes {
		v.fail(key, "", "is %d bytes long; at most %d are allowed", len(s), MaxStringBytes)
		return false
	}
	if strings.IndexByte(s, 0) >= 0 {
		v.fail(key, "", "contains a NUL byte")
		return false
	}
	return true
}

func (v *validator) manifest(r *rawManifest) *Manifest {
	m := &Manifest{Module: DefaultModule, Env: map[string]string{}}
	if r.Name == nil {
		v.fail("name", `add a line such as: name = "hello"`, "is required")
	} else if !namePattern.match(*r.Name) {
		v.fail("name", "use 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit", "%q is not a valid name", *r.Name)
	} else {
		m.Name = *r.Name
	}
	if r.Version != nil {
		if *r.Version == "" || len(*r.Version) > 64 || strings.ContainsAny(*r.Version, " \t\n\x00") {
			v.fail("version", `write a short version such as "1.2.0"`, "%q is not a valid version", *r.Version)
		}
		m.Version = *r.Version
	}
	if r.Module != nil {
		mod := *r.Module
		if mod == "" || mod == "." || mod == ".." || strings.ContainsAny(mod, "/\\\x00") || mod == ManifestName || path.Clean(mod) != mod {
			v.fail("module", `name a file at the bundle's top level, such as "module.wasm"`, "%q is not a plain file name", mod)
		}
		m.Module = mod
	}
	if len(r.Args) > MaxArgs {
		v.fail("args", "", "has %d entries; at most %d are allowed", len(r.Args), MaxArgs)
	}
	for i, a := range r.Args {
		v.str(fmt.Sprintf("args[%d]", i), a)
	}
	m.Args = append([]string{}, r.Args...)

	if len(r.Env) > MaxEnv {
		v.fail("env", "", "has %d entries; at most %d are allowed", len(r.Env), MaxEnv)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Env)) {
		val := r.Env[k]
		if !envNamePattern.match(k) {
			v.fail("env."+k, "environment names are letters, digits and '_', not starting with a digit", "%q is not a valid variable name", k)
		}
		v.str("env."+k, val)
		m.Env[k] = val
	}

	if len(r.Dirs) > MaxDirs {
		v.fail("dirs", "", "has %d entries; at most %d are allowed", len(r.Dirs), MaxDirs)
	}
	guests := map[string]bool{}
	for i, d := range r.Dirs {
		key := fmt.Sprintf("dirs[%d]", i)
		if !v.str(key, d) {
			continue
		}
		mnt, err := ParseMount(d)
		if err != nil {
			v.fail(key, "write HOST::GUEST (read-only) or HOST::GUEST::rw, for example \"data::/data\"", "%v", err)
			continue
		}
		if guests[mnt.Guest] {
			v.fail(key, "give each mount its own guest path", "guest path %q is mounted twice", mnt.Guest)
		}
		guests[mnt.Guest] = true
		m.Dirs = append(m.Dirs, mnt)
	}

	if r.Profiles == nil {
		v.fail("profiles", `list the profiles the bundle may run under, such as: profiles = ["debug", "staging", "production"]`, "is required")
	}
	seen := map[string]bool{}
	for i, p := range r.Profiles {
		key := fmt.Sprintf("profiles[%d]", i)
		if _, err := profiles.Get(p); err != nil {
			v.fail(key, "the profiles are "+strings.Join(profiles.Names(), ", "), "%q is not a profile", p)
		} else if seen[p] {
			v.fail(key, "", "%q is listed twice", p)
		}
		seen[p] = true
	}
	if r.Profiles != nil && len(r.Profiles) == 0 {
		v.fail("profiles", "list at least one profile", "is empty, so the bundle could never run")
	}
	m.Profiles = append([]string{}, r.Profiles...)

	if r.LogRecip != nil {
		if !recipientPattern.match(*r.LogRecip) {
			v.fail("log_recipient", "make a key pair with 'launch keygen' and paste its recipient (alog1 followed by 64 hex digits)", "%q is not a log recipient", *r.LogRecip)
		}
		m.LogRecipient = *r.LogRecip
	}
	if r.LogRecips != nil {
		m.LogRecipients = v.logRecipients(r.LogRecips, r.LogRecip != nil)
	}
	if r.Entry != nil {
		if !entryPattern.match(*r.Entry) || *r.Entry == "_start" {
			v.fail("entry", "name the function the reactor exports to run, () -> (): letters, digits, _ . - and $, at most 128", "%q is not an entry", *r.Entry)
		}
		m.Entry = *r.Entry
	}
	if r.Stdin != nil {
		switch *r.Stdin {
		case StdinHost, StdinNone:
			m.Stdin = *r.Stdin
		default:
			v.fail("stdin", `write "host" (the host's stdin reaches the workload) or "none" (it reads end of file)`, "%q is not a stdin", *r.Stdin)
		}
	}
	if r.Broker != nil {
		m.Broker = v.broker(r.Broker)
	}
	if r.Sealed != nil {
		m.Sealed = v.sealed(r.Sealed, guests, m.Broker != nil)
	}
	// An empty [secrets] decodes as none: its header says it was written.
	if _, written := v.lines["secrets"]; r.Secrets != nil || written {
		m.Secrets = v.secrets(r.Secrets, m, m.Broker != nil)
	}
	m.Limits = DefaultLimits()
	if l := r.Limits; l != nil {
		if l.Memory != nil {
			n, err := parseSize(l.Memory)
			switch {
			case err != nil:
				v.fail("limits.memory", `write a size such as "64MiB" or a number of bytes`, "%v", err)
			case n < PageSize || n > MaxMemoryBytes:
				v.fail("limits.memory", "memory is between 64KiB (one page) and 4GiB", "%d bytes is out of range", n)
			default:
				// Round up to whole pages: the limit is enforced in pages.
				m.Limits.MemoryBytes = (n + PageSize - 1) / PageSize * PageSize
			}
		}
		if l.WallTime != nil {
			d, err := time.ParseDuration(*l.WallTime)
			switch {
			case err != nil:
				v.fail("limits.wall_time", `write a duration such as "30s", "5m" or "1h30m"`, "%q is not a duration", *l.WallTime)
			case d <= 0:
				v.fail("limits.wall_time", "", "%q must be positive", *l.WallTime)
			default:
				m.Limits.WallTime = d
			}
		}
		if l.Output != nil {
			n, err := parseSize(l.Output)
			switch {
			case err != nil:
				v.fail("limits.output", `write a size such as "1MiB" or a number of bytes`, "%v", err)
			case n == 0 || n > math.MaxInt64:
				v.fail("limits.output", "a limit of 0 would allow nothing; no limit means unlimited: leave it out for the default, 64MiB", "%d bytes is out of range", n)
			default:
				m.Limits.OutputBytes = int64(n)
			}
		}
		if l.OpenFiles != nil {
			n, ok := l.OpenFiles.(int64)
			switch {
			case !ok:
				v.fail("limits.open_files", "write a whole number such as 64", "a %s is not a count", tomlType(l.OpenFiles))
			case n < 1 || n > MaxOpenFiles:
				v.fail("limits.open_files", fmt.Sprintf("open_files is between 1 and %d", MaxOpenFiles), "%d is out of range", n)
			default:
				m.Limits.OpenFiles = int(n)
			}
		}
		if l.FileOutput != nil {
			n, err := parseSize(l.FileOutput)
			switch {
			case err != nil:
				v.fail("limits.file_output", `write a size such as "100MiB" or a number of bytes`, "%v", err)
			case n == 0 || n > math.MaxInt64:
				// 0 is no "unlimited" here, as it is nowhere in a manifest.
				v.fail("limits.file_output", "a limit of 0 would allow nothing; no limit means unlimited: leave it out for the default, 1GiB", "%d bytes is out of range", n)
			default:
				m.Limits.FileOutputBytes = int64(n)
			}
		}
	}
	return m
}

// sealed validates the [sealed] table; guests are the guest paths of the
// manifest's dirs.
func (v *validator) sealed(r *rawSealed, guests map[string]bool, broker bool) *Sealed {
	s := &Sealed{MaxBytes: DefaultSealedSize, Key: SealedKeyTEE}
	if r.Key != nil {
		switch *r.Key {
		case SealedKeyTEE:
		case SealedKeyBroker:
			if !broker {
				v.fail("sealed.key", "add a [broker] table with the broker's url and key", "%q needs a [broker]", *r.Key)
			}
			s.Key = SealedKeyBroker
		default:
			v.fail("sealed.key", `write "tee" (the TEE derives the key) or "broker" (the [broker] releases it)`, "%q is not a key source", *r.Key)
		}
	}
	switch {
	case r.Mount == nil:
		v.fail("sealed.mount", `name the guest path, such as: mount = "/sealed"`, "is required in [sealed]")
	case !strings.HasPrefix(*r.Mount, "/") || path.Clean(*r.Mount) != *r.Mount || *r.Mount == "/":
		v.fail("sealed.mount", `write an absolute, clean guest path other than "/", such as "/sealed"`, "%q is not a mount point", *r.Mount)
	case guests[*r.Mount]:
		v.fail("sealed.mount", "give the sealed mount a guest path of its own", "%q is also mounted by dirs", *r.Mount)
	default:
		v.str("sealed.mount", *r.Mount)
		s.Guest = *r.Mount
	}
	if r.MaxSize != nil {
		n, err := parseSize(r.MaxSize)
		switch {
		case err != nil:
			v.fail("sealed.max_size", `write a size such as "16MiB" or a number of bytes`, "%v", err)
		case n == 0 || n > MaxSealedSize:
			v.fail("sealed.max_size", "max_size is between 1 byte and 1GiB", "%d bytes is out of range", n)
		default:
			s.MaxBytes = int64(n)
		}
	}
	if len(r.AcceptFrom) > MaxAcceptFrom {
		v.fail("sealed.accept_from", "", "has %d entries; at most %d are allowed", len(r.AcceptFrom), MaxAcceptFrom)
		return s
	}
	seen := map[Measurement]bool{}
	for i, h := range r.AcceptFrom {
		key := fmt.Sprintf("sealed.accept_from[%d]", i)
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != len(Measurement{}) {
			v.fail(key, "write a measurement as launch measure prints it: 96 hex digits", "%.100q is not a measurement", h)
			return s
		}
		var m Measurement
		copy(m[:], b)
		if seen[m] {
			v.fail(key, "name each measurement once", "%s appears twice", h)
			return s
		}
		seen[m] = true
		s.AcceptFrom = append(s.AcceptFrom, m)
	}
	if r.HandOnKey != nil {
		b, err := hex.DecodeString(*r.HandOnKey)
		switch {
		case err != nil || len(b) != 32:
			v.fail("sealed.hand_on_key", "write the public key launch sealed keygen prints: 64 hex digits", "%.100q is not an Ed25519 public key", *r.HandOnKey)
		case s.Key == SealedKeyBroker:
			v.fail("sealed.hand_on_key", "drop hand_on_key: with key = \"broker\" the broker policy's [bundles] says which versions share a store", "is for key = \"tee\"")
		default:
			s.HandOnKey = b
		}
	}
	return s
}

// secrets validates the [secrets] table: names are file names, paths
// resource paths outside the broker's own repository, at most MaxSecrets
// of them, with a [broker] to release them and no mount of the manifest
// at SecretsDir or beneath it.
func (v *validator) secrets(r map[string]any, m *Manifest, broker bool) map[string]string {
	out := map[string]string{}
	if !broker {
		v.fail("secrets", "add a [broker] table with the broker's url and key: the broker releases the secrets", "needs a [broker]")
	}
	if len(r) == 0 {
		v.fail("secrets", "name at least one secret, such as: api-key = \"default/tenant/api-key\", or drop [secrets]", "is empty")
	}
	if len(r) > MaxSecrets {
		v.fail("secrets", "", "has %d entries; at most %d are allowed", len(r), MaxSecrets)
	}
	for _, name := range slices.Sorted(maps.Keys(r)) {
		key := "secrets." + name
		if !secretNamePattern.match(name) {
			v.fail(key, "a secret's name is its file name under "+SecretsDir+": 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit", "%q is not a valid secret name", name)
			continue
		}
		s, ok := r[name].(string)
		if !ok {
			hint := `write the resource path the broker holds it under, such as "default/tenant/api-key"`
			if slices.Contains(manifestKeys[0].keys, name) {
				hint = "a top-level key written after [secrets] belongs to [secrets]; move " + name + " above the first [table]"
			}
			v.fail(key, hint, "a %s is not a resource path", tomlType(r[name]))
			continue
		}
		p, err := resource.Parse(s)
		if err != nil {
			v.fail(key, "write REPO/TYPE/TAG, each 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-', such as \"default/tenant/api-key\"", "%v", err)
			continue
		}
		if p.Repo == "ampoule" {
			v.fail(key, "the broker's own resources (its sealing key, "+resource.SealingKey+") are not for the guest; store the secret under another repository", "%q is in the broker's own repository", s)
			continue
		}
		out[name] = s
	}
	for i, d := range m.Dirs {
		if d.Guest == SecretsDir || strings.HasPrefix(d.Guest, SecretsDir+"/") {
			v.fail(fmt.Sprintf("dirs[%d]", i), "mount it elsewhere: the secrets are read at "+SecretsDir, "%q is where the secrets are", d.Guest)
		}
	}
	if s := m.Sealed; s != nil && (s.Guest == SecretsDir || strings.HasPrefix(s.Guest, SecretsDir+"/")) {
		v.fail("sealed.mount", "mount it elsewhere: the secrets are read at "+SecretsDir, "%q is where the secrets are", s.Guest)
	}
	return out
}

// broker validates the [broker] table.
func (v *validator) broker(r *rawBroker) *Broker {
	b := &Broker{}
	if r.URL == nil {
		v.fail("broker.url", `add the broker's address, such as: url = "https://broker.example:7443"`, "is required in [broker]")
	} else if u, err := url.Parse(*r.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		v.fail("broker.url", `write an http or https URL with a host, such as "https://broker.example:7443"`, "%q is not a broker URL", *r.URL)
	} else {
		b.URL = *r.URL
	}
	if r.Key == nil {
		v.fail("broker.key", "paste the key 'launch broker key' prints", "is required in [broker]")
	} else if k, err := hex.DecodeString(*r.Key); err != nil || len(k) != 32 {
		v.fail("broker.key", "paste the key 'launch broker key' prints: 64 hex digits", "%q is not a broker key", *r.Key)
	} else {
		b.Key = k
	}
	return b
}

// ParseMount parses HOST::GUEST or HOST::GUEST::rw (or ::ro). The guest path
// must be absolute and clean.
func ParseMount(s string) (Mount, error) {
	parts := strings.Split(s, "::")
	if len(parts) < 2 || len(parts) > 3 {
		return Mount{}, fmt.Errorf("%q is not HOST::GUEST or HOST::GUEST::rw", s)
	}
	m := Mount{Host: parts[0], Guest: parts[1]}
	if len(parts) == 3 {
		switch parts[2] {
		case "rw":
			m.Writable = true
		case "ro":
		default:
			return Mount{}, fmt.Errorf("%q: the mode is %q; it must be rw or ro", s, parts[2])
		}
	}
	if m.Host == "" {
		return Mount{}, fmt.Errorf("%q has an empty host path", s)
	}
	if !strings.HasPrefix(m.Guest, "/") || path.Clean(m.Guest) != m.Guest {
		return Mount{}, fmt.Errorf("%q: the guest path %q must be absolute and clean, such as /data", s, m.Guest)
	}
	return m, nil
}

var sizeUnits = map[string]uint64{
	"": 1, "B": 1,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
	"KB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000,
}

// parseSize accepts a non-negative TOML integer of bytes or a string such as
// "64MiB", "1.5GiB" or "100KB".
func parseSize(v any) (uint64, error) {
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return 0, fmt.Errorf("%d is negative", x)
		}
		return uint64(x), nil
	case string:
		s := strings.TrimSpace(x)
		i := strings.IndexFunc(s, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
		if i < 0 {
			i = len(s)
		}
		num, unit := s[:i], strings.TrimSpace(s[i:])
		mult, ok := sizeUnits[unit]
		if !ok || num == "" {
			return 0, fmt.Errorf("%q is not a size", x)
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f < 0 || f*float64(mult) > float64(1<<62) {
			return 0, fmt.Errorf("%q is not a size", x)
		}
		return uint64(f * float64(mult)), nil
	default:
		return 0, fmt.Errorf("a %s is not a size", tomlType(v))
	}
}

func tomlType(v any) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case float64:
		return "float"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	case time.Time, toml.LocalDate, toml.LocalDateTime, toml.LocalTime:
		return "date"
	}
	return fmt.Sprintf("%T", v)
}

// keyLines maps every dotted key path in the document ("limits.memory",
// "args[2]") to its line. It also reports syntax errors with their position.
func keyLines(doc []byte) (map[string]int, error) {
	lines := map[string]int{}
	p := unstable.Parser{}
	p.Reset(doc)
	lineOf := func(r unstable.Range) int {
		if r.Length == 0 && r.Offset == 0 {
			return 0
		}
		return p.Shape(r).Start.Line
	}
	var walkValue func(prefix string, n *unstable.Node, fallback int)
	walkValue = func(prefix string, n *unstable.Node, fallback int) {
		switch n.Kind {
		case unstable.Array:
			it := n.Children()
			for i := 0; it.Next(); i++ {
				c := it.Node()
				key := fmt.Sprintf("%s[%d]", prefix, i)
				line := lineOf(c.Raw)
				if line == 0 {
					line = fallback
				}
				lines[key] = line
				walkValue(key, c, line)
			}
		case unstable.InlineTable:
			it := n.Children()
			for it.Next() {
				walkKeyValue(&lines, &p, prefix, it.Node(), fallback, walkValue)
			}
		}
	}
	var table string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = joinKey(e.Key())
			if it := e.Key(); it.Next() {
				lines[table] = lineOf(it.Node().Raw)
			}
		case unstable.KeyValue:
			walkKeyValue(&lines, &p, table, e, 0, walkValue)
		}
	}
	return lines, p.Error()
}

func walkKeyValue(lines *map[string]int, p *unstable.Parser, prefix string, kv *unstable.Node, fallback int,
	walkValue func(string, *unstable.Node, int)) {
	key := joinKey(kv.Key())
	if prefix != "" {
		key = prefix + "." + key
	}
	line := fallback
	if it := kv.Key(); it.Next() {
		if r := it.Node().Raw; r.Length > 0 {
			line = p.Shape(r).Start.Line
		}
	}
	(*lines)[key] = line
	walkValue(key, kv.Value(), line)
}

func joinKey(it unstable.Iterator) string {
	var parts []string
	for it.Next() {
		parts = append(parts, string(it.Node().Data))
	}
	return strings.Join(parts, ".")
}

func syntaxError(file string, doc []byte, err error) error {
	var pe *unstable.ParserError
	if errors.As(err, &pe) && len(pe.Highlight) > 0 {
		off := cap(doc) - cap(pe.Highlight)
		if off >= 0 && off <= len(doc) {
			line := 1 + bytes.Count(doc[:off], []byte("\n"))
			return errcode.Errorf(errcode.ManifestSyntax, "%s:%d: %s", file, line, pe.Message)
		}
	}
	return errcode.Errorf(errcode.ManifestSyntax, "%s: %v", file, err)
}

func decodeError(file string, err error) error {
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) && len(sm.Errors) > 0 {
		d := sm.Errors[0]
		row, _ := d.Position()
		return errcode.Errorf(errcode.ManifestInvalid, "%s:%d: %s: unknown key", file, row, strings.Join(d.Key(), ".")).
			WithHint(unknownKeyHint(d.Key()))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if key == "" {
			return errcode.Errorf(errcode.ManifestInvalid, "%s:%d: %s", file, row, msg)
		}
		return errcode.Errorf(errcode.ManifestInvalid, "%s:%d: %s: %s", file, row, key, msg).
			WithHint("args, dirs and profiles are arrays of strings; env is a table of strings; see 'Manifest' in README.md")
	}
	return errcode.Errorf(errcode.ManifestInvalid, "%s: %v", file, err)
}

// canonicalManifest is the measured form: every field, defaults applied,
// keys in sorted order, sizes in bytes, durations in nanoseconds.
type canonicalManifest struct {
	Args []string `json:"args"`
	// Broker is left out when absent, as Sealed is.
	Broker *canonicalBroker `json:"broker,omitempty"`
	Dirs   []canonicalMount `json:"dirs"`
	// Entry is left out for a command, so measurements of manifests
	// without one did not change when it came.
	Entry    string            `json:"entry,omitempty"`
	Env      map[string]string `json:"env"`
	Limits   canonicalLimits   `json:"limits"`
	LogRecip string            `json:"log_recipient"`
	// LogRecips is left out when the manifest names no team, so that
	// measurements of manifests without one did not change when it came.
	LogRecips []string `json:"log_recipients,omitempty"`
	Module    string   `json:"module"`
	Name      string   `json:"name"`
	Profiles  []string `json:"profiles"`
	// Sealed is left out when the manifest has no sealed mount, so that
	// measurements of manifests without one did not change when it came.
	Sealed *canonicalSealed `json:"sealed,omitempty"`
	// Secrets is left out without [secrets], for the same reason.
	Secrets map[string]string `json:"secrets,omitempty"`
	// Stdin is left out when the manifest does not say, for the same
	// reason.
	Stdin   string `json:"stdin,omitempty"`
	Version string `json:"version"`
}

type canonicalSealed struct {
	// AcceptFrom is left out when empty, so that measurements of
	// manifests without it are what they were.
	AcceptFrom []string `json:"accept_from,omitempty"`
	Guest      string   `json:"guest"`
	// HandOnKey is left out when unset, for the same reason.
	HandOnKey string `json:"hand_on_key,omitempty"`
	Key       string `json:"key"`
	MaxBytes  int64  `json:"max_bytes"`
}

type canonicalBroker struct {
	Key string `json:"key"`
	URL string `json:"url"`
}

type canonicalMount struct {
	Guest    string `json:"guest"`
	Host     string `json:"host"`
	Writable bool   `json:"writable"`
}

type canonicalLimits struct {
	FileOutputBytes int64  `json:"file_output_bytes"`
	MemoryBytes     uint64 `json:"memory_bytes"`
	OpenFiles       int    `json:"open_files"`
	OutputBytes     int64  `json:"output_bytes"`
	WallTimeNanos   int64  `json:"wall_time_ns"`
}

// Canonical returns the manifest's canonical encoding: JSON with sorted keys,
// no insignificant whitespace and no HTML escaping, so that comments and
// layout of ampoule.toml do not change it but every field does.
func (m *Manifest) Canonical() []byte {
	c := canonicalManifest{
		Args:  nonNil(m.Args),
		Dirs:  []canonicalMount{},
		Entry: m.Entry,
		Env:   m.Env,
		Limits: canonicalLimits{
			FileOutputBytes: m.Limits.FileOutputBytes,
			MemoryBytes:     m.Limits.MemoryBytes,
			OpenFiles:       m.Limits.OpenFiles,
			OutputBytes:     m.Limits.OutputBytes,
			WallTimeNanos:   int64(m.Limits.WallTime),
		},
		LogRecip:  m.LogRecipient,
		LogRecips: m.LogRecipients,
		Module:    m.Module,
		Name:      m.Name,
		Profiles:  nonNil(m.Profiles),
		Secrets:   m.Secrets,
		Stdin:     m.Stdin,
		Version:   m.Version,
	}
	if c.Env == nil {
		c.Env = map[string]string{}
	}
	if m.Sealed != nil {
		c.Sealed = &canonicalSealed{Guest: m.Sealed.Guest, Key: m.Sealed.Key, MaxBytes: m.Sealed.MaxBytes}
		for _, a := range m.Sealed.AcceptFrom {
			c.Sealed.AcceptFrom = append(c.Sealed.AcceptFrom, a.String())
		}
		if m.Sealed.HandOnKey != nil {
			c.Sealed.HandOnKey = hex.EncodeToString(m.Sealed.HandOnKey)
		}
	}
	if m.Broker != nil {
		c.Broker = &canonicalBroker{Key: hex.EncodeToString(m.Broker.Key), URL: m.Broker.URL}
	}
	for _, d := range m.Dirs {
		c.Dirs = append(c.Dirs, canonicalMount{Guest: d.Guest, Host: d.Host, Writable: d.Writable})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		// Strings, integers, booleans and maps of strings always encode.
		panic("loader: canonical manifest: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// manifestKeys are the keys of each table of a manifest, "" the top level
// (its tables too, by name), in the order the README lists them.
var manifestKeys = []struct {
	table string
	keys  []string
}{
	{"", []string{"name", "version", "module", "args", "env", "dirs", "profiles", "log_recipient", "log_recipients", "stdin", "entry", "limits", "sealed", "broker", "secrets"}},
	{"limits", []string{"memory", "wall_time", "output", "open_files", "file_output"}},
	{"sealed", []string{"mount", "max_size", "key", "accept_from", "hand_on_key"}},
	{"broker", []string{"url", "key"}},
}

// allKeysHint lists every key, for an unknown key with no nearer advice.
const allKeysHint = "the keys are name, version, module, args, env, dirs, profiles, log_recipient, log_recipients, stdin, entry, [limits] memory, wall_time, output, open_files, file_output, [sealed] mount, max_size, key, accept_from, hand_on_key, [broker] url, key and [secrets] NAME = REPO/TYPE/TAG; see 'Manifest' in README.md"

// unknownKeyHint advises on an unknown key by its path: a key of another
// table (the top level's, put after a [table] header, as appending to the
// file does) says where it belongs, a misspelled one the key it is nearest.
func unknownKeyHint(path []string) string {
	if len(path) == 0 {
		return allKeysHint
	}
	table, last := strings.Join(path[:len(path)-1], "."), path[len(path)-1]
	var here []string
	for _, t := range manifestKeys {
		if t.table == table {
			here = t.keys
		}
	}
	for _, t := range manifestKeys {
		if t.table == table || !slices.Contains(t.keys, last) || slices.Contains(here, last) {
			continue
		}
		if t.table == "" {
			return fmt.Sprintf("%s belongs at the top level, above the first [table]: a key after a [%s] header is in that table; see 'Manifest' in README.md", last, table)
		}
		return fmt.Sprintf("%s belongs in the [%s] table; see 'Manifest' in README.md", last, t.table)
	}
	if near, ok := suggest.Nearest(last, here); ok {
		return fmt.Sprintf("did you mean %s? %s", near, allKeysHint)
	}
	return allKeysHint
}

// MaxLogRecipients bounds log_recipients (logging.MaxRecipients): a reader
// tries each recipient's block, and the log's header carries one per
// recipient.
const MaxLogRecipients = 16

// Recipients returns the manifest's log recipients: LogRecipients, or
// LogRecipient alone, or none.
func (m *Manifest) Recipients() []string {
	if m.LogRecipients != nil {
		return m.LogRecipients
	}
	if m.LogRecipient != "" {
		return []string{m.LogRecipient}
	}
	return nil
}

// logRecipients checks log_recipients: 1 to MaxLogRecipients recipients,
// each valid and none twice, and no log_recipient beside them.
func (v *validator) logRecipients(rs []string, single bool) []string {
	const hint = "make a key pair per member with 'launch keygen' and list their recipients (alog1 followed by 64 hex digits)"
	if single {
		v.fail("log_recipients", "keep one: log_recipient for one key, log_recipients for a team's", "is given beside log_recipient")
	}
	switch {
	case len(rs) == 0:
		v.fail("log_recipients", hint, "is empty, so no one could read the log")
	case len(rs) > MaxLogRecipients:
		v.fail("log_recipients", "share an identity file within a group, or run the bundle once per group", "lists %d recipients; a log has at most %d", len(rs), MaxLogRecipients)
	}
	seen := map[string]bool{}
	for i, r := range rs {
		key := fmt.Sprintf("log_recipients[%d]", i)
		if !recipientPattern.match(r) {
			v.fail(key, hint, "%q is not a log recipient", r)
		} else if seen[r] {
			v.fail(key, "list each member's recipient once", "%q is listed twice", r)
		}
		seen[r] = true
	}
	return append([]string{}, rs...)
}
