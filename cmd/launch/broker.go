package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func cmdBroker(fs *flag.FlagSet) action {
	db := fs.String("db", "", "the broker's database file (made, with fresh keys, if missing)")
	policyFile := fs.String("policy", "", "serve: the verification policy (TOML; 'launch policy new')")
	listen := fs.String("listen", "127.0.0.1:7443", "serve: the address to listen on")
	pcs := fs.String("tdx-pcs", tdx.PCS, "serve: where Intel's collateral for TDX quotes comes from (Intel's PCS, a mirror serving its paths, or off); answers are kept an hour")
	asJSON := fs.Bool("json", false, "audit, secret list: print JSON")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		sub := in.Sub
		if sub != "secret" && (len(in.Pos) > 0 || len(in.Rest) > 0) {
			return e.fail(errcode.Errorf(errcode.Usage, "broker %s takes no arguments", sub).WithHint("usage: launch " + c.doc.Usage))
		}
		if *db == "" {
			return e.fail(errcode.Errorf(errcode.Usage, "broker %s needs --db FILE", sub).WithHint("usage: launch " + c.doc.Usage))
		}
		if sub == "serve" && *policyFile == "" {
			return e.fail(errcode.Errorf(errcode.Usage, "broker serve needs --policy FILE").WithHint("write one with: launch policy new --from BUNDLE"))
		}
		// The broker's master key derives every sealing key it releases: its
		// process is protected as a static run is (not dumpable, no core, no
		// stack dump on a signal), whichever subcommand opens the database.
		if e.protect != nil {
			if err := e.protect(); err != nil {
				return e.fail(err)
			}
		}
		if sub == "secret" {
			return brokerSecret(e, c, in, *db, *asJSON)
		}
		pol := *policyFile
		if sub != "serve" {
			pol = ""
		}
		srv, err := ampoule.OpenBroker(*db, pol, *pcs)
		if err != nil {
			return e.fail(err)
		}
		defer srv.Close()
		switch sub {
		case "key":
			fmt.Fprintln(e.stdout, hex.EncodeToString(srv.PublicKey()))
			return 0
		case "audit":
			return printAudit(e, srv, *asJSON)
		}
		return serveBroker(ctx, e, srv, *listen)
	}
}

// printAudit prints the broker's audit trail.
func printAudit(e *cliEnv, srv *broker.Server, asJSON bool) int {
	records, err := srv.Audit()
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "reading the audit trail: %v", err))
	}
	if asJSON {
		if records == nil {
			records = []broker.AuditRecord{}
		}
		return writeJSON(e, records)
	}
	for _, r := range records {
		if a := r.Aggregate; a != nil {
			fmt.Fprintf(e.stdout, "%s %d refused decisions beyond the audit budget, until %s\n", r.Time.Format(time.RFC3339), a.Count, a.Until.Format(time.RFC3339))
			for _, m := range []struct {
				what   string
				counts map[string]int
			}{{"status", a.Statuses}, {"remote", a.Remotes}, {"measurement", a.Measurements}, {"reason", a.Reasons}} {
				for _, k := range slices.Sorted(maps.Keys(m.counts)) {
					fmt.Fprintf(e.stdout, "    %s %s: %d\n", m.what, k, m.counts[k])
				}
			}
			if a.Other > 0 {
				fmt.Fprintf(e.stdout, "    and %d values beyond those kept\n", a.Other)
			}
			continue
		}
		fmt.Fprintf(e.stdout, "%s %-15s %-8s %-10s %s %s released=[%s]\n", r.Time.Format(time.RFC3339), r.Status, r.Kind, r.Profile, r.Measurement, r.Remote, strings.Join(r.Released, ","))
		for _, reason := range r.Reasons {
			fmt.Fprintf(e.stdout, "    - %s\n", reason)
		}
	}
	return 0
}

// serveBroker serves the broker on listen until ctx ends.
func serveBroker(ctx context.Context, e *cliEnv, srv *broker.Server, listen string) int {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Usage, "--listen %s: %v", listen, err))
	}
	fmt.Fprintf(e.stdout, "broker key: %s\nlistening on http://%s\n", hex.EncodeToString(srv.PublicKey()), ln.Addr())
	if err := srv.Serve(ctx, ln); err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "%w", err))
	}
	return 0
}
