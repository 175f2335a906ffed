package ampoule

import (
	"path/filepath"
	"strings"
	"testing"

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
