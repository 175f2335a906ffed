package ampoule

import (
	"context"
	"errors"
	"os"
	"runtime/debug"
	"strings"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// ServeBroker serves srv as broker.ListenAndServe does, the policy read
// again from policyFile on each reload. A refusal of o's own values is
// E1001 usage naming its flag (--listen, --tls-cert and --tls-key), with a
// hint for plain HTTP beyond loopback; anything else is E5001 internal.
//
// Unless the environment sets GOGC, the process collects garbage at
// GOGC=400 while it serves: a serving broker's live heap is a megabyte or
// two, so the default's 4 MB goal collected about fifteen times a second
// under load (a twentieth of its CPU); at 400 the goal is five times the
// live heap, still a few megabytes.
func ServeBroker(ctx context.Context, srv *broker.Server, o broker.ServeOptions, policyFile string) error {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(brokerGOGC))
	}
	o.Reload = func() (*attest.Policy, error) { return ReadPolicy(policyFile) }
	err := srv.ListenAndServe(ctx, o)
	var le *broker.ListenError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, broker.ErrPlainNotLoopback):
		return errcode.Errorf(errcode.Usage, "--listen %s: %v", o.Addr, broker.ErrPlainNotLoopback).WithHint("pass --tls-cert FILE and --tls-key FILE, or listen on 127.0.0.1")
	case errors.As(err, &le) && le.Flag == "tls":
		return errcode.Errorf(errcode.Usage, "--tls-cert %s, --tls-key %s: %v", o.TLSCert, o.TLSKey, le.Err)
	case errors.As(err, &le):
		return errcode.Errorf(errcode.Usage, "--listen %s: %v", o.Addr, le.Err)
	}
	return errcode.Errorf(errcode.Internal, "%v", err)
}

// brokerGOGC is the GOGC a serving broker collects garbage at.
const brokerGOGC = 400

// OpenBroker opens the tenant's key broker's database at db (made, with
// fresh keys, if missing). To serve, policyFile names its policy, which
// must pin the simulator keys it accepts (E1023 policy-invalid), and pcs
// where Intel's collateral for TDX quotes comes from: tdx.PCS, a mirror
// serving its paths, or "off"; empty policyFile opens it to read its key
// or audit trail. A database another process holds is E5007
// broker-unavailable.
func OpenBroker(db, policyFile, pcs string) (*broker.Server, error) {
	if policyFile == "" {
		srv, err := broker.Open(db, nil)
		return srv, brokerOpenError(err)
	}
	pol, err := ReadPolicy(policyFile)
	if err != nil {
		return nil, err
	}
	if err := broker.CheckPolicy(pol); err != nil {
		return nil, errcode.Errorf(errcode.PolicyInvalid, "%s: %w", policyFile, err).WithHint("pin the simulator keys of the machines you trust: sim_keys = [\"<key>\"] ('launch platform info' prints this machine's), or accept anyone's with sim_keys = \"any\"")
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
	return errcode.Errorf(errcode.BrokerUnavailable, "%w", err).WithHint("one broker process holds a database at a time; stop it to read the key or the audit trail")
}

// BrokerAudit reads the audit trail of the broker whose database is db:
// from the broker serving it, over its administration socket, when one
// does (served is then true: the database is that broker's to hold), else
// from the database itself. A serving broker that does not answer is
// E5007 broker-unavailable, not a fallback to a trail that may be
// behind it.
func BrokerAudit(ctx context.Context, db string) (records []broker.AuditRecord, served bool, err error) {
	records, err = broker.ReadAuditSocket(ctx, broker.AdminSocket(db))
	switch {
	case err == nil:
		return records, true, nil
	case !errors.Is(err, broker.ErrNoAdmin):
		return nil, false, errcode.Errorf(errcode.BrokerUnavailable, "reading the audit trail from the serving broker: %v", err)
	}
	srv, err := OpenBroker(db, "", "off")
	if err != nil {
		return nil, false, err
	}
	defer srv.Close()
	if records, err = srv.Audit(); err != nil {
		return nil, false, errcode.Errorf(errcode.Internal, "reading the audit trail: %v", err)
	}
	return records, false, nil
}
