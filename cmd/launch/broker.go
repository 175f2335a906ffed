package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"strings"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func cmdBroker(fs *flag.FlagSet) action {
	db := fs.String("db", "", "the broker's database file (made, with fresh keys, if missing)")
	policyFile := fs.String("policy", "", "serve: the verification policy (TOML; 'launch policy new')")
	listen := fs.String("listen", "127.0.0.1:7443", "serve: the address to listen on")
	pcs := fs.String("tdx-pcs", tdx.PCS, "serve: where Intel's collateral for TDX quotes comes from (Intel's PCS, a mirror serving its paths, or off); answers are kept an hour")
	asJSON := fs.Bool("json", false, "audit, secret list: print JSON")
	tlsCert := fs.String("tls-cert", "", "serve: the TLS certificate (PEM, its chain after it); without it, plain HTTP on loopback only")
	tlsKey := fs.String("tls-key", "", "serve: the TLS certificate's private key (PEM)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		sub := in.Sub
		// The broker's master key derives every sealing key it releases: its
		// process is protected as a static run is (not dumpable, no core, no
		// stack dump on a signal), whichever subcommand opens the database.
		if e.protect != nil {
			if err := e.protect(); err != nil {
				return e.fail(err)
			}
		}
		if sub == "secret" {
			return brokerSecret(ctx, e, c, in, *db, *asJSON)
		}
		if sub == "audit" {
			records, served, err := ampoule.BrokerAudit(ctx, *db)
			if err != nil {
				return e.fail(err)
			}
			if served {
				fmt.Fprintf(e.stderr, "launch: the trail read from the serving broker over %s\n", broker.AdminSocket(*db))
			}
			return printAudit(e, records, *asJSON)
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
		}
		o := broker.ServeOptions{Addr: *listen, Admin: broker.AdminSocket(*db), TLSCert: *tlsCert, TLSKey: *tlsKey}
		return serveBroker(ctx, e, srv, o, *policyFile)
	}
}

// printAudit prints the broker's audit trail.
func printAudit(e *cliEnv, records []broker.AuditRecord, asJSON bool) int {
	if asJSON {
		if records == nil {
			records = []broker.AuditRecord{}
		}
		return writeJSON(e, records)
	}
	for _, r := range records {
		r.WriteText(e.stdout)
	}
	return 0
}

// serveBroker serves the broker on o.Addr, and its administration on its
// socket, until ctx ends; one line per request goes to stderr. SIGHUP
// reads policyFile again (ampoule.ServeBroker).
func serveBroker(ctx context.Context, e *cliEnv, srv *broker.Server, o broker.ServeOptions, policyFile string) int {
	srv.RequestLog, srv.Version = e.stderr, sandbox.Versions().Launch
	o.Notify = func(ev broker.Event) {
		switch ev.Kind {
		case broker.PlainHTTP:
			fmt.Fprintf(e.stderr, "launch: warning: serving plain HTTP on %s: answers are signed, but the metadata is in the clear; pass --tls-cert and --tls-key to serve beyond this machine\n", strings.TrimPrefix(ev.URL, "http://"))
		case broker.Listening:
			fmt.Fprintf(e.stdout, "broker key: %s\nlistening on %s\n", hex.EncodeToString(srv.PublicKey()), ev.URL)
		case broker.AdminServing:
			fmt.Fprintf(e.stdout, "audit socket: %s\n", ev.URL)
		case broker.AdminFailed:
			// The trail stays readable once the broker stops.
			fmt.Fprintf(e.stderr, "launch: warning: 'launch broker audit' cannot read the trail while this broker serves: %v\n", ev.Err)
		case broker.Reloaded:
			fmt.Fprintf(e.stderr, "launch: policy reloaded from %s\n", policyFile)
		case broker.ReloadFailed:
			fmt.Fprintf(e.stderr, "launch: warning: the policy was not reloaded, the one served stays: %v\n", ev.Err)
		}
	}
	if err := ampoule.ServeBroker(ctx, srv, o, policyFile); err != nil {
		return e.fail(err)
	}
	return 0
}
