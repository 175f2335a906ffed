package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

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
		if err := brokerUsage(c, in, *db, *policyFile); err != nil {
			return e.fail(err)
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
			return brokerSecret(ctx, e, c, in, *db, *asJSON)
		}
		if sub == "audit" {
			if code, served := e.servedAudit(ctx, *db, *asJSON); served {
				return code
			}
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
			records, err := srv.Audit()
			if err != nil {
				return e.fail(errcode.Errorf(errcode.Internal, "reading the audit trail: %v", err))
			}
			return printAudit(e, records, *asJSON)
		}
		if (*tlsCert == "") != (*tlsKey == "") {
			return e.fail(errcode.Errorf(errcode.Usage, "--tls-cert and --tls-key go together"))
		}
		return serveBroker(ctx, e, srv, serveOptions{listen: *listen, admin: broker.AdminSocket(*db), policyFile: *policyFile, tlsCert: *tlsCert, tlsKey: *tlsKey})
	}
}

// brokerUsage checks a broker subcommand's arguments and the flags it
// needs.
func brokerUsage(c command, in invocation, db, policyFile string) error {
	switch {
	case in.Sub != "secret" && (len(in.Pos) > 0 || len(in.Rest) > 0):
		return errcode.Errorf(errcode.Usage, "broker %s takes no arguments", in.Sub).WithHint("usage: launch " + c.doc.Usage)
	case db == "":
		return errcode.Errorf(errcode.Usage, "broker %s needs --db FILE", in.Sub).WithHint("usage: launch " + c.doc.Usage)
	case in.Sub == "serve" && policyFile == "":
		return errcode.Errorf(errcode.Usage, "broker serve needs --policy FILE").WithHint("write one with: launch policy new --from BUNDLE")
	}
	return nil
}

// servedAudit prints the trail of a broker serving db, which holds the
// database, over its administration socket; served is false when no
// broker serves it.
func (e *cliEnv) servedAudit(ctx context.Context, db string, asJSON bool) (code int, served bool) {
	records, err := broker.ReadAuditSocket(ctx, broker.AdminSocket(db))
	switch {
	case err == nil:
		fmt.Fprintf(e.stderr, "launch: the trail read from the serving broker over %s\n", broker.AdminSocket(db))
		return printAudit(e, records, asJSON), true
	case errors.Is(err, broker.ErrNoAdmin):
		return 0, false
	}
	return e.fail(errcode.Errorf(errcode.BrokerUnavailable, "reading the audit trail from the serving broker: %v", err)), true
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
		fmt.Fprintf(e.stdout, "%s %-15s %-8s %-10s %s %s %s released=[%s]\n", r.Time.Format(time.RFC3339), r.Status, r.Kind, r.Profile, r.Bundle, r.Measurement, r.Remote, strings.Join(r.Released, ","))
		for _, reason := range r.Reasons {
			fmt.Fprintf(e.stdout, "    - %s\n", reason)
		}
	}
	return 0
}

// serveBroker serves the broker on listen, and its administration on the
// unix socket admin, until ctx ends; one line per request goes to stderr.
// SIGHUP reads policyFile again: a policy that reads and that the broker
// serves replaces the one served between two requests (none is dropped);
// any other leaves it as it was, with a warning.
func serveBroker(ctx context.Context, e *cliEnv, srv *broker.Server, o serveOptions) int {
	listen, admin, policyFile := o.listen, o.admin, o.policyFile
	var tlsConfig *tls.Config
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return e.fail(errcode.Errorf(errcode.Usage, "--tls-cert %s, --tls-key %s: %v", o.tlsCert, o.tlsKey, err))
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Usage, "--listen %s: %v", listen, err))
	}
	scheme := "https"
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	} else {
		scheme = "http"
		host, _, _ := net.SplitHostPort(ln.Addr().String())
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			ln.Close()
			return e.fail(errcode.Errorf(errcode.Usage, "--listen %s: plain HTTP is served on loopback only", listen).WithHint("pass --tls-cert FILE and --tls-key FILE, or listen on 127.0.0.1"))
		}
		fmt.Fprintf(e.stderr, "launch: warning: serving plain HTTP on %s: answers are signed, but the metadata is in the clear; pass --tls-cert and --tls-key to serve beyond this machine\n", ln.Addr())
	}
	srv.RequestLog, srv.Version = e.stderr, sandbox.Versions().Launch
	fmt.Fprintf(e.stdout, "broker key: %s\nlistening on %s://%s\n", hex.EncodeToString(srv.PublicKey()), scheme, ln.Addr())
	if stopAdmin, err := srv.ServeAdmin(admin); err != nil {
		// The trail stays readable once the broker stops.
		fmt.Fprintf(e.stderr, "launch: warning: 'launch broker audit' cannot read the trail while this broker serves: %v\n", err)
	} else {
		defer stopAdmin()
		fmt.Fprintf(e.stdout, "audit socket: %s\n", admin)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
serving:
	for {
		select {
		case err := <-done:
			return e.fail(errcode.Errorf(errcode.Internal, "serving: %v", err))
		case <-hup:
			reloadPolicy(e, srv, policyFile)
		case <-ctx.Done():
			break serving
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return e.fail(errcode.Errorf(errcode.Internal, "stopping: %v", err))
	}
	return 0
}

// serveOptions are serve's: where it listens, its administration
// socket, its policy file and its TLS certificate and key (none: plain
// HTTP on loopback).
type serveOptions struct {
	listen, admin, policyFile, tlsCert, tlsKey string
}

// reloadPolicy serves policyFile's policy from now on, or says why not and
// keeps the one served.
func reloadPolicy(e *cliEnv, srv *broker.Server, policyFile string) {
	pol, err := ampoule.ReadPolicy(policyFile)
	if err == nil {
		err = srv.SetPolicy(pol)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "launch: warning: the policy was not reloaded, the one served stays: %v\n", err)
		return
	}
	fmt.Fprintf(e.stderr, "launch: policy reloaded from %s\n", policyFile)
}
