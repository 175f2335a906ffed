package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
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

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/sandbox"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func brokerCommand() command {
	return command{
		name:    "broker",
		summary: "run the tenant's key broker, or read its key and audit trail",
		usage:   "broker serve --policy POLICY.toml --db FILE [--listen ADDR] [--tls-cert FILE --tls-key FILE]\n       launch broker key --db FILE\n       launch broker audit --db FILE [--json]",
		help: `
The broker is the tenant's relying party. It hands out nonces that carry
their own proof and expiry (a challenge stores nothing, so a flood of them
costs nothing), answers each nonce once, verifies a run's evidence against the policy (as 'launch verify' does),
and releases the run's sealing key only when the verdict is affirming,
sealed with HPKE to the runtime key the evidence binds and signed with the
broker's Ed25519 key. Manifests pin that key in [broker] key, so a host in
the middle can neither read a released key nor hand a run one of its own;
the transport needs no trust for that, and serve takes --tls-cert and
--tls-key for privacy of the metadata (without them it serves plain HTTP
on loopback only, with a warning). The database (bbolt) holds the broker's keys, the nonces used
until they expire, and the audit trail: every decision that released
anything, and refused ones within a budget (a burst of 100, then one a
second, one by one; beyond that, counted per minute; 4 MiB and 90 days of
them, oldest pruned first). Keep it, and its backups, on a machine the
tenant trusts. The sealing key is derived from the broker's
master key and the measurement, so a store opens on any machine that runs
the same measurement and the broker affirms, and differs for evidence the
host could make or read (the simulator, a debuggable TEE). For TDX quotes
the broker fetches Intel's collateral (--tdx-pcs) and judges the TCB with
it; a policy with tdx_require_tcb_up_to_date refuses a quote it could not.
A policy that accepts the simulator must pin its keys (sim_keys, as
'launch policy new' writes it) or say sim_keys = "any": serve refuses
any other.

serve reads its policy file again on SIGHUP (a policy that does not read,
or that the broker does not serve, leaves the one served, with a
warning), and prints one line per request on stderr (time, remote, method, path,
status, decision, duration; nothing of a request's content) and answers
GET / with its name, version, key and endpoints. broker key prints the key
to pin; broker audit prints every decision, with the bundle's name and
version when the run proved them (its manifest and module digest make the
measurement the evidence binds; "(claimed)" otherwise), and reads a
serving broker's trail over its socket beside the database (FILE.sock,
its user's only).

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
	tlsCert := fs.String("tls-cert", "", "serve: the TLS certificate (PEM, its chain after it); without it, plain HTTP on loopback only")
	tlsKey := fs.String("tls-key", "", "serve: the TLS certificate's private key (PEM)")
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
	if sub == "audit" {
		// A serving broker holds the database: its administration socket
		// answers the trail instead.
		records, err := broker.ReadAuditSocket(ctx, broker.AdminSocket(*db))
		if err == nil {
			fmt.Fprintf(e.stderr, "launch: the trail read from the serving broker over %s\n", broker.AdminSocket(*db))
			return printAudit(e, records, *asJSON)
		}
		if !errors.Is(err, broker.ErrNoAdmin) {
			return e.fail(errcode.Errorf(errcode.BrokerUnavailable, "reading the audit trail from the serving broker: %v", err))
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
	return errcode.Errorf(errcode.BrokerUnavailable, "%v", err).WithHint("one broker process holds a database at a time; stop it to read the key (broker audit reads a serving broker's trail over its socket, " + broker.AdminSocket("DB") + ")")
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
	adminCtx, stopAdmin := context.WithCancel(ctx)
	defer stopAdmin()
	srv.RequestLog, srv.Version = e.stderr, sandbox.Versions().Launch
	fmt.Fprintf(e.stdout, "broker key: %s\nlistening on %s://%s\n", hex.EncodeToString(srv.PublicKey()), scheme, ln.Addr())
	if err := srv.ServeAdmin(adminCtx, admin); err != nil {
		// The trail stays readable once the broker stops.
		fmt.Fprintf(e.stderr, "launch: warning: 'launch broker audit' cannot read the trail while this broker serves: %v\n", err)
	} else {
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
	pol, err := readPolicy(policyFile)
	if err == nil {
		err = srv.SetPolicy(pol)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "launch: warning: the policy was not reloaded, the one served stays: %v\n", err)
		return
	}
	fmt.Fprintf(e.stderr, "launch: policy reloaded from %s\n", policyFile)
}
