package ampoule

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
)

// TestBrokerSecrets: a value read from a file or stdin is stored, listed
// without its value and removed, on a real broker database; an empty or
// oversized value, a bad path and a resource not there have their codes.
func TestBrokerSecrets(t *testing.T) {
	dir := t.TempDir()
	srv, err := broker.Open(filepath.Join(dir, "broker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	file := filepath.Join(dir, "value")
	os.WriteFile(file, []byte("s3cret\n"), 0o600)
	v, err := ReadSecretValue(file, nil)
	if err != nil || string(v) != "s3cret\n" {
		t.Fatalf("from a file: %q, %v", v, err)
	}
	if v, err := ReadSecretValue("-", strings.NewReader("x")); err != nil || string(v) != "x" {
		t.Errorf("from stdin: %q, %v", v, err)
	}
	for _, in := range []string{"", strings.Repeat("x", broker.MaxResourceBytes+1)} {
		if _, err := ReadSecretValue("-", strings.NewReader(in)); errcode.From(err).Code != errcode.SecretValueInvalid {
			t.Errorf("a value of %d bytes: %v", len(in), err)
		}
	}
	if _, err := ReadSecretValue("-", nil); errcode.From(err).Code != errcode.SecretValueInvalid {
		t.Errorf("no stdin: %v", err)
	}
	if err := PutSecret(srv, "repo/type/tag", v); err != nil {
		t.Fatal(err)
	}
	list, err := Secrets(srv)
	if err != nil || len(list) != 1 || list[0].Path != "repo/type/tag" || list[0].Size != len(v) {
		t.Errorf("list: %+v, %v", list, err)
	}
	if err := PutSecret(srv, "no-slashes", v); errcode.From(err).Code != errcode.ResourcePathInvalid {
		t.Errorf("a bad path: %v", err)
	}
	if err := RemoveSecret(srv, "repo/type/tag"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveSecret(srv, "repo/type/tag"); errcode.From(err).Code != errcode.SecretNotFound {
		t.Errorf("removed twice: %v", err)
	}
	if list, err := Secrets(srv); err != nil || list == nil || len(list) != 0 {
		t.Errorf("an empty store lists %v, %v", list, err)
	}
}

// TestBrokerAudit: a broker serving the database answers with its trail
// over its socket (served); once it stops, the trail is read from the
// database itself, the same trail.
func TestBrokerAudit(t *testing.T) {
	db := filepath.Join(t.TempDir(), "broker.db")
	srv, err := broker.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := srv.ServeAdmin(broker.AdminSocket(db))
	if err != nil {
		t.Fatal(err)
	}
	live, served, err := BrokerAudit(context.Background(), db)
	if err != nil || !served {
		t.Fatalf("from the serving broker: served %v, %v", served, err)
	}
	stop()
	srv.Close()
	stored, served, err := BrokerAudit(context.Background(), db)
	if err != nil || served {
		t.Fatalf("from the database: served %v, %v", served, err)
	}
	if len(live) != len(stored) {
		t.Errorf("%d records served, %d stored", len(live), len(stored))
	}
}
