package ampoule

import (
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tdxtestdata "github.com/google/go-tdx-guest/testing/testdata"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
)

func codeOf(err error) errcode.Code { return errcode.From(err).Code }

func write(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTenantFiles: each of the tenant's files read from the wrong thing
// (missing, a directory, another kind of file) gets its own code naming
// the file; a good one reads.
func TestTenantFiles(t *testing.T) {
	dir := t.TempDir()
	policy := write(t, "policy.toml", "measurements = [\""+strings.Repeat("ab", 48)+"\"]\nprofiles = [\"production\"]\nbackends = [\"sev-snp\"]\n")
	if _, err := ReadPolicy(policy); err != nil {
		t.Errorf("a policy: %v", err)
	}
	for _, f := range []string{filepath.Join(dir, "none"), dir, write(t, "x.toml", "measurements = 3\n")} {
		if _, err := ReadPolicy(f); codeOf(err) != errcode.PolicyInvalid {
			t.Errorf("policy %s: %v", f, err)
		}
		if _, err := ReadTDXCollateral(f); codeOf(err) != errcode.EvidenceMalformed {
			t.Errorf("collateral %s: %v", f, err)
		}
		if _, err := VerifyEvidenceFile(f, nil, attest.Options{}); codeOf(err) != errcode.EvidenceMalformed {
			t.Errorf("evidence %s: %v", f, err)
		}
		if _, err := ReadIdentity(f, nil); codeOf(err) != errcode.IdentityInvalid {
			t.Errorf("identity %s: %v", f, err)
		}
	}
	if _, err := ReadTDXCollateral(write(t, "quote", string(tdxtestdata.RawQuote))); codeOf(err) != errcode.EvidenceMalformed || !strings.Contains(errcode.Detailed(err), "collateral fetch") {
		t.Errorf("a quote as collateral: %v", err)
	}
	id, _ := logging.GenerateIdentity()
	file, err := id.Marshal(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadIdentity("-", strings.NewReader(string(file)))
	if err != nil || got.Recipient().String() != id.Recipient().String() {
		t.Errorf("identity from stdin: %v", err)
	}
	if _, err := ReadIdentity("-", nil); codeOf(err) != errcode.IdentityInvalid {
		t.Errorf("- without stdin is a file name: %v", err)
	}
}

// TestPolicyTemplate: a starter policy measures the bundle under each
// profile asked for (production by default) and pins this machine's
// simulator key only where the simulator is accepted; the simulator
// without AllowInsecure, an unknown backend, a profile the manifest does
// not allow and a key for a policy refusing the simulator are refused.
func TestPolicyTemplate(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	key := filepath.Join(t.TempDir(), "sim.key")
	tpl, err := PolicyTemplate(hello, PolicyConfig{})
	if err != nil || len(tpl.Measurements) != 1 || tpl.Measurements[0].Profile != "production" || len(tpl.Backends) != 2 || tpl.SimPin != "" {
		t.Fatalf("%+v, %v", tpl, err)
	}
	tpl, err = PolicyTemplate(hello, PolicyConfig{Profiles: []string{"staging"}, Backends: []string{"sim"}, AllowInsecure: true, SimKey: key})
	b, kerr := sim.LoadOrCreate(key)
	if err != nil || kerr != nil || tpl.SimPin != string(hexKeyOf(b.PublicKey())) || tpl.Backends[0] != tee.KindSim {
		t.Errorf("%+v, %v %v", tpl, err, kerr)
	}
	for name, cfg := range map[string]PolicyConfig{
		"sim without insecure": {Backends: []string{"sim"}},
		"an unknown backend":   {Backends: []string{"sgx"}},
		"a key and no sim":     {SimKey: key},
		"an unknown profile":   {Profiles: []string{"prod"}},
	} {
		if _, err := PolicyTemplate(hello, cfg); err == nil || errcode.From(err).Code.Class() != errcode.ClassUsage {
			t.Errorf("%s: %v", name, err)
		}
	}
	debugOnly := testwasm.CopyBundle(t, hello, "name = \"d\"\nprofiles = [\"debug\"]\n")
	if _, err := PolicyTemplate(debugOnly, PolicyConfig{}); codeOf(err) != errcode.ProfileNotAllowed {
		t.Errorf("a profile the manifest does not allow: %v", err)
	}
}

// TestPlatform: the simulator key is read where it exists and never made
// here; a file that is not a key is refused.
func TestPlatform(t *testing.T) {
	key := filepath.Join(t.TempDir(), "sim.key")
	info, err := Platform(key)
	if err != nil || info.SimKey != "" {
		t.Fatalf("%+v, %v", info, err)
	}
	if _, err := os.Stat(key); !os.IsNotExist(err) {
		t.Errorf("Platform made the key: %v", err)
	}
	b, _ := sim.LoadOrCreate(key)
	if info, err := Platform(key); err != nil || info.SimKey != string(hexKeyOf(b.PublicKey())) {
		t.Errorf("%+v, %v", info, err)
	}
	if _, err := Platform(write(t, "bad.key", "not a key")); err == nil {
		t.Error("a bad key file was accepted")
	}
}

func hexKeyOf(b []byte) []byte { return []byte(hex.EncodeToString(b)) }

// TestFetchTDXCollateral: from a PCS mirror on loopback serving Intel's
// real answers, the real quote's collateral is fetched as a document
// ReadTDXCollateral reads; not a quote is E1022, a mirror gone E1024.
func TestFetchTDXCollateral(t *testing.T) {
	srv, _ := tdxfake.PCSMirror(t)
	quote := write(t, "quote.dat", string(tdxtestdata.RawQuote))
	data, err := FetchTDXCollateral(quote, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadTDXCollateral(write(t, "c.json", string(data))); err != nil {
		t.Errorf("the fetched document does not read: %v", err)
	}
	if _, err := FetchTDXCollateral(write(t, "bad", "not a quote"), srv.URL); codeOf(err) != errcode.EvidenceMalformed {
		t.Errorf("not a quote: %v", err)
	}
	srv.Close()
	if _, err := FetchTDXCollateral(quote, srv.URL); codeOf(err) != errcode.CollateralUnavailable {
		t.Errorf("a mirror gone: %v", err)
	}
}

// TestTenantFilesMade: a new identity's file reads back to its recipient;
// an envelope written to a new file decodes to the same envelope and is
// never written over; a log is read from its file, or stdin for "-".
func TestTenantFilesMade(t *testing.T) {
	file, recipient, err := NewIdentityFile(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, err := ReadIdentity("-", strings.NewReader(string(file)))
	if err != nil || id.Recipient().String() != recipient || !strings.HasPrefix(recipient, "alog1") {
		t.Errorf("identity %q read back: %v", recipient, err)
	}
	env := &tee.Envelope{Version: 1, Kind: tee.KindSim, Insecure: true, Profile: "debug", Nonce: []byte("n")}
	out := filepath.Join(t.TempDir(), "evidence.json")
	if err := WriteEnvelope(out, env); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := env.Encode()
	if string(data) != string(want)+"\n" {
		t.Errorf("the envelope written: %q, want %q", data, want)
	}
	if err := WriteEnvelope(out, env); codeOf(err) != errcode.OutputExists {
		t.Errorf("an envelope over a file: %v", err)
	}
	for _, name := range []string{"", "-"} {
		r, err := OpenLogFile(name, strings.NewReader("from stdin"))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(r); string(b) != "from stdin" {
			t.Errorf("%q: read %q", name, b)
		}
	}
	if r, err := OpenLogFile(out, nil); err != nil {
		t.Error(err)
	} else {
		r.Close()
	}
	if _, err := OpenLogFile(filepath.Join(t.TempDir(), "none"), nil); codeOf(err) != errcode.Usage || !errcode.IsHost(err) {
		t.Errorf("a missing log: %v", err)
	}
}
