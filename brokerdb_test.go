package ampoule

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// TestOpenBroker: a broker opens to read with no policy, and to serve
// with one that pins its simulator keys, fetching TDX collateral unless
// pcs is off; a policy accepting any simulator unpinned is E1023, and a
// database another open holds is E5007.
func TestOpenBroker(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "broker.db")
	m := strings.Repeat("ab", 48)
	pinned := write(t, "p.toml", "measurements = [\""+m+"\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\nsim_keys = \"any\"\n")
	unpinned := write(t, "u.toml", "measurements = [\""+m+"\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\n")
	srv, err := OpenBroker(db, pinned, tdx.PCS)
	if err != nil || srv.TDXCollateral == nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := OpenBroker(db, "", ""); codeOf(err) != errcode.BrokerUnavailable {
		t.Errorf("a database held: %v", err)
	}
	srv.Close()
	if srv, err = OpenBroker(db, pinned, "off"); err != nil || srv.TDXCollateral != nil {
		t.Fatalf("pcs off: %v", err)
	}
	srv.Close()
	if _, err := OpenBroker(db, unpinned, "off"); codeOf(err) != errcode.PolicyInvalid {
		t.Errorf("unpinned: %v", err)
	}
	if srv, err = OpenBroker(db, "", ""); err != nil {
		t.Fatalf("read: %v", err)
	}
	srv.Close()
}

// TestServeBrokerRefusals: ServeBroker's refusals of its options are
// usage errors naming the flag each came from, plain HTTP beyond loopback
// with the hint to serve TLS, before anything is served.
func TestServeBrokerRefusals(t *testing.T) {
	srv, err := OpenBroker(filepath.Join(t.TempDir(), "broker.db"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	missing := filepath.Join(t.TempDir(), "none.pem")
	for _, tc := range []struct {
		o    broker.ServeOptions
		want string
		hint string
	}{
		{broker.ServeOptions{Addr: "0.0.0.0:0"}, "--listen 0.0.0.0:0: plain HTTP is served on loopback only", "--tls-cert FILE"},
		{broker.ServeOptions{Addr: "127.0.0.1:0", TLSCert: missing, TLSKey: missing}, "--tls-cert " + missing + ", --tls-key " + missing, ""},
		{broker.ServeOptions{Addr: "127.0.0.1:99999"}, "--listen 127.0.0.1:99999", ""},
	} {
		err := ServeBroker(context.Background(), srv, tc.o, "")
		if codeOf(err) != errcode.Usage || !strings.Contains(err.Error(), tc.want) || !strings.Contains(errcode.From(err).Hint(), tc.hint) {
			t.Errorf("%+v: %v (hint %q)", tc.o, err, errcode.From(err).Hint())
		}
	}
}
