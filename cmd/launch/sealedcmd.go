package main

import (
	"context"
	"fmt"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
)

func sealedCommand() command {
	return command{
		name:    "sealed",
		summary: "move a sealed store's files out or in (debug only)",
		usage:   "sealed export [--sealed FILE] [--backend B] [--sim-key FILE] BUNDLE -o DIR\n       launch sealed import [--sealed FILE] [--backend B] [--sim-key FILE] BUNDLE DIR",
		help: `
A sealed store opens only for the measurement that sealed it, or for a later
version whose manifest names that measurement in [sealed] accept_from
(under key = "tee" only the debug profile takes it; with key = "broker",
the broker's policy puts the versions in one bundle). Under the debug
profile, whose stores no other profile opens, the host may also move the
files by hand:

export opens the bundle's store (--sealed FILE, or its default) with the
key a run of BUNDLE would have and writes its files into DIR, new or
empty; the store is not changed. import seals the files under DIR into a
new store for BUNDLE, as its run would seal them; an existing store is
never replaced (E1031). Under staging and production both are refused,
E3019: their stores' plaintext never reaches the host.

Examples:
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
	if len(args) == 0 || (args[0] != "export" && args[0] != "import") {
		return e.fail(errcode.Errorf(errcode.Usage, "sealed takes the subcommand export or import").WithHint("usage: launch " + c.usage))
	}
	sub, args := args[0], args[1:]
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
