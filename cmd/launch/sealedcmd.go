package main

import (
	"context"
	"encoding/hex"
	"flag"
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

func cmdSealed(fs *flag.FlagSet) action {
	var f sealedFlags
	fs.StringVar(&f.profile, "profile", "", "export, import: the profile whose store it is, only debug allows them (default debug); sign: the profile BUNDLE is measured under (default production)")
	fs.StringVar(&f.backend, "backend", "", "export, import: the TEE backend whose key opens or seals the store: sim, snp or tdx (default: the profile's)")
	fs.StringVar(&f.simKey, "sim-key", "", "export, import: the simulator's key file (default: the user's config dir)")
	fs.StringVar(&f.store, "sealed", "", "export, import: the sealed store (default: $XDG_STATE_HOME/ampoule/sealed/NAME.PROFILE.sealed)")
	fs.StringVar(&f.out, "o", "", "export: the directory to write the files into, new or empty; keygen: the key file to make (mode 0600); sign: the new file to write the hand-on to (default: stdout)")
	fs.StringVar(&f.key, "key", "", "sign: the hand-on key file (launch sealed keygen)")
	fs.StringVar(&f.from, "from", "", "sign: the measurement whose stores are handed on (launch measure of the earlier version)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		switch in.Sub {
		case "keygen":
			return e.sealedKeygen(c, in, f)
		case "sign":
			return e.sealedSign(c, in, f)
		}
		return e.sealedMove(ctx, c, in, f)
	}
}

// sealedFlags are 'launch sealed's flags, each subcommand taking some.
type sealedFlags struct {
	profile, backend, simKey, store, out, key, from string
}

// sealedMove is sealed export and import (debug only).
func (e *cliEnv) sealedMove(ctx context.Context, c command, in invocation, f sealedFlags) int {
	pos, sub := in.Pos, in.Sub
	switch {
	case sub == "export" && (len(pos) != 1 || len(in.Rest) > 0 || f.out == ""):
		return e.fail(errcode.Errorf(errcode.Usage, "sealed export takes one BUNDLE and -o DIR").WithHint("usage: launch " + c.doc.Usage))
	case sub == "import" && (len(pos) != 2 || len(in.Rest) > 0 || f.out != ""):
		return e.fail(errcode.Errorf(errcode.Usage, "sealed import takes a BUNDLE and the DIR to seal, and no -o").WithHint("usage: launch " + c.doc.Usage))
	}
	profile := f.profile
	if profile == "" {
		profile = "debug"
	}
	cfg := ampoule.Config{Profile: profile, Backend: f.backend, SimKey: f.simKey, SealedStore: f.store,
		Platform: e.platform, TEE: e.tee, Warnings: e.stderr}
	var info ampoule.SealedInfo
	var err error
	if sub == "export" {
		info, err = ampoule.ExportSealed(ctx, pos[0], cfg, f.out)
	} else {
		info, err = ampoule.ImportSealed(ctx, pos[0], cfg, pos[1])
	}
	if err != nil {
		return e.fail(err)
	}
	if sub == "export" {
		fmt.Fprintf(e.stdout, "exported %d entries of %s into %s\n", info.Entries, info.Store, f.out)
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
func (e *cliEnv) sealedKeygen(c command, in invocation, f sealedFlags) int {
	if len(in.Pos) > 0 || len(in.Rest) > 0 {
		return e.fail(errcode.Errorf(errcode.Usage, "sealed keygen takes no arguments").WithHint("usage: launch " + c.doc.Usage))
	}
	if f.out == "" {
		return e.fail(errcode.Errorf(errcode.Usage, "sealed keygen needs -o KEY").WithHint("usage: launch " + c.doc.Usage))
	}
	file, pub, err := sealed.NewHandOnKey()
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "making a key: %v", err))
	}
	if err := ampoule.WriteNewFile(f.out, file, 0o600, "keygen never overwrites a key; choose another file"); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "hand_on_key = \"%x\"\n", pub[:])
	return 0
}

// sealedSign signs the hand-on of --from's stores to BUNDLE's measurement
// under --profile.
func (e *cliEnv) sealedSign(c command, in invocation, f sealedFlags) int {
	if len(in.Pos) != 1 || len(in.Rest) > 0 {
		return e.fail(errcode.Errorf(errcode.Usage, "sealed sign takes one BUNDLE").WithHint("usage: launch " + c.doc.Usage))
	}
	bundle := in.Pos[0]
	if f.key == "" || f.from == "" {
		return e.fail(errcode.Errorf(errcode.Usage, "sealed sign needs --key KEY and --from MEASUREMENT").WithHint("usage: launch " + c.doc.Usage))
	}
	profile := f.profile
	if profile == "" {
		profile = "production"
	}
	var fromM [48]byte
	if b, err := hex.DecodeString(strings.TrimSpace(f.from)); err != nil || len(b) != len(fromM) {
		return e.fail(errcode.Errorf(errcode.Usage, "--from %.100q is not a measurement", f.from).WithHint("pass what launch measure --profile P prints for the earlier version: 96 hex digits"))
	} else {
		copy(fromM[:], b)
	}
	if _, err := profiles.Get(profile); err != nil {
		return e.fail(err)
	}
	data, err := readBounded(f.key, 4096)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Usage, "--key: %v", err).WithHint("pass the file launch sealed keygen made"))
	}
	key, err := sealed.ParseHandOnKey(data)
	clear(data)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Usage, "--key %s: %v", f.key, err).WithHint("pass the file launch sealed keygen made"))
	}
	b, err := loader.Open(bundle)
	if err != nil {
		return e.fail(err)
	}
	to := loader.Measure(b, profile)
	if to == fromM {
		return e.fail(errcode.Errorf(errcode.Usage, "--from is %s's own measurement under %s", bundle, profile).WithHint("--from names the earlier version's measurement"))
	}
	if b.Manifest.Sealed == nil || !slices.Contains(b.Manifest.Sealed.AcceptFrom, loader.Measurement(fromM)) {
		return e.fail(errcode.Errorf(errcode.Usage, "%s's [sealed] accept_from does not name %x, so no run of it would take that store", bundle, fromM[:]).
			WithHint("add the measurement to accept_from in its ampoule.toml first (it is measured), then sign"))
	}
	handOn := sealed.SignHandOn(key, fromM, to)
	clear(key)
	if f.out == "" {
		e.stdout.Write(handOn)
		return 0
	}
	if err := ampoule.WriteNewFile(f.out, handOn, 0o644, "sign never overwrites a file; choose another"); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "handed the stores of %x on to %s (%s, %s)\n", fromM[:], to, bundle, profile)
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
