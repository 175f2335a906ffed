package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/sealed"
)

func sealedCommand() command {
	return command{
		name:    "sealed",
		summary: "hand a sealed store on to a new version, or move its files (debug)",
		usage:   "sealed export [--sealed FILE] [--backend B] [--sim-key FILE] BUNDLE -o DIR\n       launch sealed import [--sealed FILE] [--backend B] [--sim-key FILE] BUNDLE DIR\n       launch sealed keygen -o KEY\n       launch sealed sign --key KEY --from MEASUREMENT [--profile P] BUNDLE [-o FILE]",
		help: `
A sealed store opens only for the measurement that sealed it, or for a later
version whose manifest names that measurement in [sealed] accept_from. A
manifest alone is no consent, so with key = "broker" the broker's policy
must put both versions in one bundle, and with key = "tee" staging and
production also want a hand-on: keygen makes a key (its public half goes
into the earlier version's [sealed] hand_on_key, which its stores record),
and sign uses it to hand the stores of the measurement --from on to BUNDLE
under --profile; launch run --hand-on FILE takes the result. Keep the key
where the tenant keeps its keys.

Under the debug profile, whose stores no other profile opens, the host may
also move the files by hand:

export opens the bundle's store (--sealed FILE, or its default) with the
key a run of BUNDLE would have and writes its files into DIR, new or
empty; the store is not changed. import seals the files under DIR into a
new store for BUNDLE, as its run would seal them; an existing store is
never replaced (E1031). Under staging and production both are refused,
E3019: their stores' plaintext never reaches the host.

Examples:
  launch sealed keygen -o hand-on.key
  launch sealed sign --key hand-on.key --from $(launch measure --profile production v1/) --profile production v2/ -o v1-to-v2.hand-on
  launch run --profile production --hand-on v1-to-v2.hand-on v2/
  launch sealed export wasm-examples/notebook -o notes/
  launch sealed import --sealed v2.sealed notebook-v2/ notes/`,
		run: doSealed,
	}
}

func doSealed(ctx context.Context, e *cliEnv, args []string) int {
	c := sealedCommand()
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		printCommandHelp(e.stdout, c)
		return 0
	}
	if len(args) == 0 || (args[0] != "export" && args[0] != "import" && args[0] != "keygen" && args[0] != "sign") {
		return e.fail(errcode.Errorf(errcode.Usage, "sealed takes the subcommand export, import, keygen or sign").WithHint("usage: launch " + c.usage))
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "keygen":
		return e.sealedKeygen(c, args)
	case "sign":
		return e.sealedSign(c, args)
	}
	fs := e.newFlagSet(c)
	profile := fs.String("profile", "debug", "the profile whose store it is: only debug allows this")
	backend := fs.String("backend", "", "the TEE backend whose key opens or seals the store: sim, snp or tdx (default: the profile's)")
	simKey := fs.String("sim-key", "", "the simulator's key file (default: the user's config dir)")
	store := fs.String("sealed", "", "the sealed store (default: $XDG_STATE_HOME/ampoule/sealed/NAME.PROFILE.sealed)")
	out := fs.String("o", "", "export: the directory to write the files into, new or empty")
	pos, rest, err := e.parse(c, fs, args)
	switch {
	case err == errHelp:
		return 0
	case err != nil:
		return e.fail(err)
	case sub == "export" && (len(pos) != 1 || len(rest) > 0 || *out == ""):
		return e.fail(errcode.Errorf(errcode.Usage, "sealed export takes one BUNDLE and -o DIR").WithHint("usage: launch " + c.usage))
	case sub == "import" && (len(pos) != 2 || len(rest) > 0 || *out != ""):
		return e.fail(errcode.Errorf(errcode.Usage, "sealed import takes a BUNDLE and the DIR to seal, and no -o").WithHint("usage: launch " + c.usage))
	}
	cfg := ampoule.Config{Profile: *profile, Backend: *backend, SimKey: *simKey, SealedStore: *store,
		Platform: e.platform, TEE: e.tee, Warnings: e.stderr}
	var info ampoule.SealedInfo
	if sub == "export" {
		info, err = ampoule.ExportSealed(ctx, pos[0], cfg, *out)
	} else {
		info, err = ampoule.ImportSealed(ctx, pos[0], cfg, pos[1])
	}
	if err != nil {
		return e.fail(err)
	}
	if sub == "export" {
		fmt.Fprintf(e.stdout, "exported %d entries of %s into %s\n", info.Entries, info.Store, *out)
		if info.From != nil {
			fmt.Fprintf(e.stdout, "the store was sealed by %s, which the manifest accepts\n", info.From)
		}
	} else {
		fmt.Fprintf(e.stdout, "sealed %d entries of %s into %s, for measurement %s\n", info.Entries, pos[1], info.Store, info.Measurement)
	}
	return 0
}

// sealedKeygen makes a hand-on key: the file (never overwritten), and the
// manifest line naming its public half.
func (e *cliEnv) sealedKeygen(c command, args []string) int {
	fs := e.newFlagSet(c)
	out := fs.String("o", "", "the key file to make (mode 0600)")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
	if *out == "" {
		return e.fail(errcode.Errorf(errcode.Usage, "sealed keygen needs -o KEY").WithHint("usage: launch " + c.usage))
	}
	file, pub, err := sealed.NewHandOnKey()
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "making a key: %v", err))
	}
	if err := writeNew(*out, file, 0o600, "keygen never overwrites a key; choose another file"); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "hand_on_key = \"%x\"\n", pub[:])
	return 0
}

// sealedSign signs the hand-on of --from's stores to BUNDLE's measurement
// under --profile.
func (e *cliEnv) sealedSign(c command, args []string) int {
	fs := e.newFlagSet(c)
	keyFile := fs.String("key", "", "the hand-on key file (launch sealed keygen)")
	from := fs.String("from", "", "the measurement whose stores are handed on (launch measure of the earlier version)")
	profile := fs.String("profile", "production", "the profile BUNDLE is measured under")
	out := fs.String("o", "", "write the hand-on to this new file (default: stdout)")
	bundle, done, code := e.parseOne(c, fs, args, "BUNDLE")
	if done {
		return code
	}
	if *keyFile == "" || *from == "" {
		return e.fail(errcode.Errorf(errcode.Usage, "sealed sign needs --key KEY and --from MEASUREMENT").WithHint("usage: launch " + c.usage))
	}
	var fromM [48]byte
	if b, err := hex.DecodeString(strings.TrimSpace(*from)); err != nil || len(b) != len(fromM) {
		return e.fail(errcode.Errorf(errcode.Usage, "--from %.100q is not a measurement", *from).WithHint("pass what launch measure --profile P prints for the earlier version: 96 hex digits"))
	} else {
		copy(fromM[:], b)
	}
	if _, err := profiles.Get(*profile); err != nil {
		return e.fail(err)
	}
	data, err := readBounded(*keyFile, 4096)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Usage, "--key: %v", err).WithHint("pass the file launch sealed keygen made"))
	}
	key, err := sealed.ParseHandOnKey(data)
	clear(data)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Usage, "--key %s: %v", *keyFile, err).WithHint("pass the file launch sealed keygen made"))
	}
	b, err := loader.Open(bundle)
	if err != nil {
		return e.fail(err)
	}
	to := loader.Measure(b, *profile)
	if to == fromM {
		return e.fail(errcode.Errorf(errcode.Usage, "--from is %s's own measurement under %s", bundle, *profile).WithHint("--from names the earlier version's measurement"))
	}
	if b.Manifest.Sealed == nil || !slices.Contains(b.Manifest.Sealed.AcceptFrom, loader.Measurement(fromM)) {
		return e.fail(errcode.Errorf(errcode.Usage, "%s's [sealed] accept_from does not name %x, so no run of it would take that store", bundle, fromM[:]).
			WithHint("add the measurement to accept_from in its ampoule.toml first (it is measured), then sign"))
	}
	handOn := sealed.SignHandOn(key, fromM, to)
	clear(key)
	if *out == "" {
		e.stdout.Write(handOn)
		return 0
	}
	if err := writeNew(*out, handOn, 0o644, "sign never overwrites a file; choose another"); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "handed the stores of %x on to %s (%s, %s)\n", fromM[:], to, bundle, *profile)
	return 0
}

// readBounded reads a regular file of at most max bytes (a FIFO or device is
// refused without blocking); past max it reads max+1, which its parser
// refuses.
func readBounded(path string, max int64) ([]byte, error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max+1))
}
