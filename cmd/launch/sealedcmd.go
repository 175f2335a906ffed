package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/sealed"
)

func cmdSealed(fs *flag.FlagSet) action {
	var f sealedFlags
	fs.StringVar(&f.cfg.Profile, "profile", "", "export, import: the profile whose store it is, only debug allows them (default debug); sign: the profile BUNDLE is measured under (default production)")
	fs.StringVar(&f.cfg.Backend, "backend", "", "export, import: the TEE backend whose key opens or seals the store: sim, snp or tdx (default: the profile's)")
	fs.StringVar(&f.cfg.SimKey, "sim-key", "", "export, import: the simulator's key file (default: the user's config dir)")
	fs.StringVar(&f.cfg.SealedStore, "sealed", "", "export, import: the sealed store (default: $XDG_STATE_HOME/ampoule/sealed/NAME.PROFILE.sealed)")
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

// sealedFlags are 'launch sealed's flags, each subcommand taking some:
// those of export and import go straight into cfg.
type sealedFlags struct {
	cfg            ampoule.Config
	out, key, from string
}

// sealedMove is sealed export and import (debug only).
func (e *cliEnv) sealedMove(ctx context.Context, c command, in invocation, f sealedFlags) int {
	pos, sub := in.Pos, in.Sub
	cfg := f.cfg
	if cfg.Profile == "" {
		cfg.Profile = "debug"
	}
	cfg.Platform, cfg.TEE, cfg.Warnings = e.platform, e.tee, e.stderr
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
	info.WriteText(e.stdout)
	return 0
}

// sealedKeygen makes a hand-on key: the file (never overwritten), and the
// manifest line naming its public half.
func (e *cliEnv) sealedKeygen(c command, in invocation, f sealedFlags) int {
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
	bundle := in.Pos[0]
	profile := f.cfg.Profile
	if profile == "" {
		profile = "production"
	}
	h, err := ampoule.SignHandOn(bundle, profile, f.key, f.from)
	if err != nil {
		return e.fail(err)
	}
	if f.out == "" {
		e.stdout.Write(h.Data)
		return 0
	}
	if err := ampoule.WriteNewFile(f.out, h.Data, 0o644, "sign never overwrites a file; choose another"); err != nil {
		return e.fail(err)
	}
	fmt.Fprintf(e.stdout, "handed the stores of %s on to %s (%s, %s)\n", h.From, h.To, bundle, profile)
	return 0
}
