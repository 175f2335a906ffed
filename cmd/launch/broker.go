package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
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
			if records == nil {
				records = []broker.AuditRecord{}
			}
			return e.show(*asJSON, records, func(w io.Writer) {
				for _, r := range records {
					r.WriteText(w)
				}
			})
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

// serveBroker serves the broker on o.Addr, and its administration on its
// socket, until ctx ends; one line per request goes to stderr. SIGHUP
// reads policyFile again (ampoule.ServeBroker).
func serveBroker(ctx context.Context, e *cliEnv, srv *broker.Server, o broker.ServeOptions, policyFile string) int {
	srv.RequestLog, srv.Version = e.stderr, sandbox.Versions().Launch
	o.Notify = func(ev broker.Event) { ev.WriteText(e.stdout, e.stderr, srv.PublicKey(), policyFile) }
	if err := ampoule.ServeBroker(ctx, srv, o, policyFile); err != nil {
		return e.fail(err)
	}
	return 0
}

// brokerSecret is 'launch broker secret': the broker's stored resources,
// the secrets a manifest's [secrets] names. A value comes from a file or
// stdin, never from the command line (which other users of the machine
// and the shell's history see), and is never printed. The process is
// protected already: the master key that seals every value, and the
// value, are in its memory.
func brokerSecret(ctx context.Context, e *cliEnv, c command, in invocation, db string, asJSON bool) int {
	if len(in.Pos) == 0 || (in.Pos[0] != "put" && in.Pos[0] != "list" && in.Pos[0] != "rm") {
		return e.fail(errcode.Errorf(errcode.Usage, "broker secret takes the subcommand put, list or rm").WithHint("usage: launch " + c.Doc.Usage))
	}
	sub, pos := in.Pos[0], in.Pos[1:]
	want := map[string]int{"put": 2, "list": 0, "rm": 1}[sub]
	if len(pos) != want || len(in.Rest) > 0 {
		return e.fail(errcode.Errorf(errcode.Usage, "broker secret %s takes %d arguments, not %d", sub, want, len(pos)+len(in.Rest)).WithHint("usage: launch " + c.Doc.Usage))
	}
	var err error
	var value []byte
	if sub == "put" {
		if value, err = ampoule.ReadSecretValue(pos[1], e.stdin); err != nil {
			return e.fail(err)
		}
		defer clear(value)
	}
	store, served, closeStore, err := ampoule.OpenSecrets(ctx, db)
	if err != nil {
		return e.fail(err)
	}
	defer closeStore()
	if served {
		fmt.Fprintf(e.stderr, "launch: through the serving broker over %s\n", broker.AdminSocket(db))
	}
	switch sub {
	case "put":
		if err := ampoule.PutSecret(store, pos[0], value); err != nil {
			return e.fail(err)
		}
		note := ""
		if value[len(value)-1] == '\n' {
			note = "; it ends with a newline, which the guest reads too"
		}
		fmt.Fprintf(e.stdout, "stored %s (%d bytes, sealed under the broker's master key%s)\n", pos[0], len(value), note)
	case "rm":
		if err := ampoule.RemoveSecret(store, pos[0]); err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "removed %s\n", pos[0])
	case "list":
		list, err := ampoule.Secrets(store)
		if err != nil {
			return e.fail(err)
		}
		return e.show(asJSON, list, func(w io.Writer) { broker.WriteResourcesText(w, list) })
	}
	return 0
}
