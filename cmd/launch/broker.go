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

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func brokerCommand() command {
	return command{
		name:    "broker",
		summary: "run the tenant's key broker, or read its key and audit trail",
		usage:   "broker serve --policy POLICY.toml --db FILE [--listen ADDR]\n       launch broker key --db FILE\n       launch broker audit --db FILE [--json]",
		help: `
The broker is the tenant's relying party. It hands out nonces that carry
their own proof and expiry (a challenge stores nothing, so a flood of them
costs nothing), answers each nonce once, verifies a run's evidence against the policy (as 'launch verify' does),
and releases the run's sealing key only when the verdict is affirming,
sealed with HPKE to the runtime key the evidence binds and signed with the
broker's Ed25519 key. Manifests pin that key in [broker] key, so a host in
the middle can neither read a released key nor hand a run one of its own;
the transport needs no trust (put TLS in front for privacy of the
metadata). The database (bbolt) holds the broker's keys, the nonces used
until they expire, and the audit trail: every decision that released
anything, and refused ones within a budget (a burst of 100, then one a
second, one by one; beyond that, counted per minute; 4 MiB and 90 days of
them, oldest pruned first). Keep it, and its backups, on a machine the
tenant trusts. The sealing key is derived from the broker's
master key and the measurement (or, for one the policy's [bundles] lists,
its bundle's name: one key for the bundle's versions), so a store opens on
any machine that runs the same measurement and the broker affirms, and
differs for evidence the host could make or read (the simulator, a
debuggable TEE). For TDX quotes
the broker fetches Intel's collateral (--tdx-pcs) and judges the TCB with
it; a policy with tdx_require_tcb_up_to_date refuses a quote it could not.
A policy that accepts the simulator must pin its keys (sim_keys, as
'launch policy new' writes it) or say sim_keys = "any": serve refuses
any other.

broker key prints the key to pin; broker audit prints every decision.

Examples:
  launch broker serve --policy policy.toml --db broker.db --listen 127.0.0.1:7443
  launch broker key --db broker.db
  launch broker audit --db broker.db --json`,
		run: doBroker,
	}
}

func doBroker(ctx context.Context, e *cliEnv, args []string) int {
	c := brokerCommand()
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		printCommandHelp(e.stdout, c)
		return 0
	}
	if len(args) == 0 || (args[0] != "serve" && args[0] != "key" && args[0] != "audit") {
		return e.fail(errcode.Errorf(errcode.Usage, "broker takes the subcommand serve, key or audit").WithHint("usage: launch " + c.usage))
	}
	sub, args := args[0], args[1:]
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
		return e.fail(errcode.Errorf(errcode.Usage, "broker %s needs --db FILE", sub).WithHint("usage: launch " + c.usage))
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
	pol, err := readPolicy(policyFile)
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
