package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func doBroker(ctx context.Context, e *cliEnv, c command, args []string) int {
	sub, args, done, code := e.subcommand(c, args)
	if done {
		return code
	}
	fs := e.newFlagSet(c)
	db := fs.String("db", "", "the broker's database file (made, with fresh keys, if missing)")
	policyFile := fs.String("policy", "", "serve: the verification policy (TOML; 'launch policy new')")
	listen := fs.String("listen", "127.0.0.1:7443", "serve: the address to listen on")
	pcs := fs.String("tdx-pcs", tdx.PCS, "serve: where Intel's collateral for TDX quotes comes from (Intel's PCS, a mirror serving its paths, or off); answers are kept an hour")
	asJSON := fs.Bool("json", false, "audit: print JSON")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
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
	srv, err := openBroker(sub, *db, *policyFile, *pcs)
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

// openBroker opens the broker's database, with the policy for serve.
func openBroker(sub, db, policyFile, pcs string) (*broker.Server, error) {
	if sub != "serve" {
		srv, err := broker.Open(db, nil)
		return srv, brokerOpenError(err)
	}
	pol, err := ampoule.ReadPolicy(policyFile)
	if err != nil {
		return nil, err
	}
	if err := broker.CheckPolicy(pol); err != nil {
		return nil, errcode.Errorf(errcode.PolicyInvalid, "%s: %v", policyFile, err).WithHint("pin the simulator keys of the machines you trust: sim_keys = [\"<key>\"] ('launch platform info' prints this machine's), or accept anyone's with sim_keys = \"any\"")
	}
	srv, err := broker.Open(db, pol)
	if err != nil {
		return nil, brokerOpenError(err)
	}
	if pcs != "off" {
		// An empty base is Intel's own hosts (the root CA CRL is not on
		// the PCS's); anything else is a mirror serving every path.
		base := strings.TrimSuffix(pcs, "/")
		if base == tdx.PCS {
			base = ""
		}
		srv.TDXCollateral = (&tdx.CollateralSource{Base: base}).Fetch
	}
	return srv, nil
}

func brokerOpenError(err error) error {
	if err == nil {
		return nil
	}
	return errcode.Errorf(errcode.BrokerUnavailable, "%v", err).WithHint("one broker process holds a database at a time; stop it to read the key or the audit trail")
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
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return e.fail(errcode.Errorf(errcode.Internal, "serving: %v", err))
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return e.fail(errcode.Errorf(errcode.Internal, "stopping: %v", err))
	}
	return 0
}
