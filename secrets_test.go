package ampoule_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/brokertest"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
)

const apiKeyPath = "default/tenant/api-key"

// secretWorld is a real broker (bbolt file, loopback HTTP) holding a
// secret, a simulator key, and the secret-consumer bundle pinned to the
// broker.
type secretWorld struct {
	srv    *broker.Server
	url    string
	simKey string
	simPin string
	secret []byte
	dir    string
}

func newSecretWorld(t *testing.T) *secretWorld {
	t.Helper()
	dir := t.TempDir()
	s, err := broker.Open(filepath.Join(dir, "broker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	h := httptest.NewServer(s.Handler())
	t.Cleanup(h.Close)
	w := &secretWorld{srv: s, url: h.URL, simKey: filepath.Join(dir, "sim.key"), secret: []byte("sk-live-" + strings.Repeat("5a", 16)), dir: dir}
	be, err := ampoule.OpenBackend(tee.KindSim, w.simKey)
	if err != nil {
		t.Fatal(err)
	}
	w.simPin = hex.EncodeToString(be.(*sim.Backend).PublicKey())
	if err := s.PutResource(apiKeyPath, w.secret); err != nil {
		t.Fatal(err)
	}
	return w
}

// bundle is the secret-consumer with the manifest's [secrets] lines and
// version.
func (w *secretWorld) bundle(t *testing.T, version, secrets string) string {
	t.Helper()
	return w.bundleWith(t, version, "", secrets)
}

// bundleWith is bundle with top-level lines of its own.
func (w *secretWorld) bundleWith(t *testing.T, version, top, secrets string) string {
	t.Helper()
	return testwasm.CopyBundle(t, testwasm.Example(t, "secret-consumer"), "name = \"secret-consumer\"\nversion = \""+version+"\"\nprofiles = [\"debug\", \"staging\"]\n"+top+
		"[broker]\nurl = \""+w.url+"\"\nkey = \""+hex.EncodeToString(w.srv.PublicKey())+"\"\n[secrets]\n"+secrets+"[limits]\nwall_time = \"60s\"\n")
}

// serve makes the broker serve a policy accepting bundle under debug and
// staging on the simulator (and tdx), with grant as its [[grants]].
func (w *secretWorld) serve(t *testing.T, bundle, grant string) {
	t.Helper()
	b, err := loader.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer("%debug", loader.Measure(b, "debug").String(), "%staging", loader.Measure(b, "staging").String())
	p, err := attest.ParsePolicy([]byte(r.Replace("measurements = [\"%debug\", \"%staging\"]\nprofiles = [\"debug\", \"staging\"]\nbackends = [\"sim\", \"tdx\"]\nallow_insecure = true\nsim_keys = [\"" + w.simPin + "\"]\n" + grant)))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.srv.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
}

func (w *secretWorld) run(t *testing.T, bundle, profile string, cfg ampoule.Config) (string, error) {
	t.Helper()
	var stdout bytes.Buffer
	cfg.Profile, cfg.Backend, cfg.SimKey, cfg.Stdout, cfg.Warnings = profile, tee.KindSim, w.simKey, &stdout, io.Discard
	if cfg.CacheDir == "" {
		cfg.NoCache = true
	}
	_, err := ampoule.Run(context.Background(), bundle, cfg)
	return stdout.String(), err
}

// TestRunReadsItsSecret: the bundle the policy grants its secret to reads
// it at /run/secrets/api-key (the guest prints its SHA-256) and cannot
// change it; the secret is in no file of the run's temporary, cache or
// state directories, nor in the runner's environment or command line.
func TestRunReadsItsSecret(t *testing.T) {
	w := newSecretWorld(t)
	bundle := w.bundle(t, "1.0.0", "api-key = \""+apiKeyPath+"\"\n")
	w.serve(t, bundle, "[[grants]]\nresources = [\""+apiKeyPath+"\"]\nmeasurements = [\"%debug\"]\ninsecure = true\n")
	scratch := t.TempDir()
	for _, v := range []string{"TMPDIR", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"} {
		d := filepath.Join(scratch, v)
		os.MkdirAll(d, 0o700)
		t.Setenv(v, d)
	}
	var proc [][]byte
	out, err := w.run(t, bundle, "debug", ampoule.Config{
		Args: []string{"--try-write"}, CacheDir: filepath.Join(scratch, "cache"),
		BeforeStart: func(pid int) {
			for _, f := range []string{"environ", "cmdline"} {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + f)
				proc = append(proc, b)
			}
		},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sum := sha256.Sum256(w.secret)
	if want := hex.EncodeToString(sum[:]) + "  /run/secrets/api-key\n"; !strings.HasPrefix(out, want) {
		t.Errorf("the guest printed %q, want it to start with %q", out, want)
	}
	if n := strings.Count(out, ": Read-only file system\n"); n != 5 || strings.Contains(out, "allowed") {
		t.Errorf("the guest changed /run/secrets, or not with EROFS:\n%s", out)
	}
	if len(proc) != 2 || len(proc[1]) == 0 {
		t.Fatalf("the runner's /proc was not read: %q", proc)
	}
	for _, b := range proc {
		if bytes.Contains(b, w.secret) {
			t.Errorf("the runner's /proc holds the secret: %q", b)
		}
	}
	files := 0
	for _, root := range []string{scratch, bundle, os.TempDir()} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			files++
			if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, w.secret) {
				t.Errorf("%s holds the secret", path)
			}
			return nil
		})
	}
	if entries, _ := os.ReadDir(filepath.Join(scratch, "cache")); len(entries) == 0 || files == 0 {
		t.Errorf("the run wrote no cache (%d files looked at): the test looks in the wrong place", files)
	}
	all, err := w.srv.Audit()
	records := brokertest.ResourceDecisions(t, all, 1)
	if err != nil || len(records) != 1 || records[0].Status != "affirming" || strings.Join(records[0].Released, ",") != apiKeyPath {
		t.Errorf("the audit trail: %+v %v", all, err)
	}
}

// TestRunSecretRefusals: a bundle with one byte changed, another profile,
// another backend, a resource not granted and a granted one the broker
// does not hold are refused before the workload starts, each with its
// code (only the code and ref under staging), each decision in the
// broker's audit trail.
func TestRunSecretRefusals(t *testing.T) {
	w := newSecretWorld(t)
	w.srv.PutResource("default/tenant/db", []byte("db-password"))
	bundle := w.bundle(t, "1.0.0", "api-key = \""+apiKeyPath+"\"\n")
	grant := "[[grants]]\nresources = [\"" + apiKeyPath + "\"]\nmeasurements = [\"%debug\", \"%staging\"]\nprofiles = [\"debug\"]\ninsecure = true\n"
	w.serve(t, bundle, grant)

	changed := w.bundle(t, "1.0.1", "api-key = \""+apiKeyPath+"\"\n") // one byte of the manifest
	ungranted := w.bundle(t, "1.0.0", "api-key = \""+apiKeyPath+"\"\ndb = \"default/tenant/db\"\n")
	absent := w.bundle(t, "1.0.0", "api-key = \""+apiKeyPath+"\"\nother = \"default/tenant/absent\"\n")
	for _, tc := range []struct {
		name, bundle, profile, grant string
		code                         errcode.Code
		reason                       string
	}{
		{"one byte changed", changed, "debug", "", errcode.BrokerRefused, "measurement"},
		{"another profile", bundle, "staging", "", errcode.SecretRefused, "under profile staging"},
		{"another backend", bundle, "debug", "[[grants]]\nresources = [\"" + apiKeyPath + "\"]\nmeasurements = [\"%debug\"]\nbackends = [\"tdx\"]\ninsecure = true\n", errcode.SecretRefused, "on backend sim"},
		{"simulator, hardware-only grant", bundle, "debug", "[[grants]]\nresources = [\"" + apiKeyPath + "\"]\nmeasurements = [\"%debug\"]\n", errcode.SecretRefused, "with insecure evidence"},
		{"not granted", ungranted, "debug", "", errcode.SecretRefused, "default/tenant/db is granted to no run"},
		{"granted, not held", absent, "debug", "[[grants]]\nresources = [\"" + apiKeyPath + "\", \"default/tenant/absent\"]\nmeasurements = [\"%debug\"]\ninsecure = true\n", errcode.SecretRefused, "holds nothing there"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policyBundle := tc.bundle
			if tc.name == "one byte changed" {
				policyBundle = bundle
			}
			g := grant
			if tc.grant != "" {
				g = tc.grant
			}
			w.serve(t, policyBundle, g)
			before, _ := w.srv.Audit()
			started := false
			out, err := w.run(t, tc.bundle, tc.profile, ampoule.Config{BeforeStart: func(int) { started = true }})
			if errcode.From(err).Code != tc.code {
				t.Fatalf("%v, want %v", err, tc.code)
			}
			if started || out != "" {
				t.Errorf("the workload started (%v), printing %q", started, out)
			}
			if tc.profile == "staging" {
				if msg := err.Error(); !strings.HasPrefix(msg, tc.code.String()+" (ref ") || strings.Contains(msg, "default/") {
					t.Errorf("a static profile shows %q", msg)
				}
			}
			after, _ := w.srv.Audit()
			// Evidence refused is one decision, the attestation's; then
			// one per resource, in path order, up to the one refused (the
			// run keeps nothing of those released before it).
			want := 2
			switch tc.name {
			case "one byte changed":
				want = 1
			case "not granted": // api-key, released, then db, refused
				want = 3
			}
			if len(after) != len(before)+want {
				t.Fatalf("%d audit records after, %d before, want %d more", len(after), len(before), want)
			}
			last := after[len(after)-1]
			if last.Status == "affirming" || len(last.Released) != 0 || !strings.Contains(strings.Join(last.Reasons, "; "), tc.reason) {
				t.Errorf("the decision's record: %+v, want a reason with %q", last, tc.reason)
			}
		})
	}
}

// TestStagingRunReadsItsSecret: under staging the host sees nothing of the
// run; the tenant's log, whose evidence carries the broker's nonce, holds
// the guest's line (the secret's SHA-256) and the names released, never
// the secret.
func TestStagingRunReadsItsSecret(t *testing.T) {
	w := newSecretWorld(t)
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := w.bundleWith(t, "1.0.0", "log_recipient = \""+id.Recipient().String()+"\"\n", "api-key = \""+apiKeyPath+"\"\n")
	w.serve(t, bundle, "[[grants]]\nresources = [\""+apiKeyPath+"\"]\nmeasurements = [\"%staging\"]\nprofiles = [\"staging\"]\ninsecure = true\n")
	var sink bufferSink
	out, err := w.run(t, bundle, "staging", ampoule.Config{LogSink: func() (io.WriteCloser, error) { return &sink, nil }})
	if err != nil || out != "" {
		t.Fatalf("%v, the host saw %q", err, out)
	}
	if bytes.Contains(sink.Bytes(), w.secret) {
		t.Error("the sealed log holds the secret in the clear")
	}
	b, _ := loader.Open(bundle)
	p, _ := attest.ParsePolicy([]byte("measurements = [\"" + loader.Measure(b, "staging").String() + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\nsim_keys = [\"" + w.simPin + "\"]\n"))
	r, err := ampoule.OpenLog(&sink, id, ampoule.LogCheck{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	runtime, stdout := logText(t, r)
	sum := sha256.Sum256(w.secret)
	if want := hex.EncodeToString(sum[:]) + "  /run/secrets/api-key\n"; stdout != want {
		t.Errorf("the log's stdout is %q, want %q", stdout, want)
	}
	if !strings.Contains(runtime, "secrets released") || !strings.Contains(runtime, "api-key") || strings.Contains(runtime, string(w.secret)) {
		t.Errorf("the log's runtime records:\n%s", runtime)
	}
	all, _ := w.srv.Audit()
	records := brokertest.ResourceDecisions(t, all, 1)
	if len(records) != 1 || records[0].Status != "affirming" || records[0].Profile != "staging" {
		t.Errorf("the audit trail: %+v", all)
	}
}

// TestSecretsAndSealingKeyInOneSession: a bundle whose sealed mount's key
// comes from the broker and that declares secrets asks for all of them in
// one KBS session, on the run's one nonce: one attestation, then a
// decision and an audit record for each resource.
func TestSecretsAndSealingKeyInOneSession(t *testing.T) {
	w := newSecretWorld(t)
	bundle := w.bundleWith(t, "1.0.0", "[sealed]\nmount = \"/sealed\"\nkey = \"broker\"\n", "api-key = \""+apiKeyPath+"\"\n")
	w.serve(t, bundle, "[[grants]]\nresources = [\""+apiKeyPath+"\"]\nmeasurements = [\"%debug\"]\ninsecure = true\n")
	store := filepath.Join(t.TempDir(), "consumer.sealed")
	out, err := w.run(t, bundle, "debug", ampoule.Config{SealedStore: store})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	sum := sha256.Sum256(w.secret)
	if !strings.HasPrefix(out, hex.EncodeToString(sum[:])) {
		t.Errorf("the guest printed %q", out)
	}
	if _, err := os.Stat(store); err != nil {
		t.Errorf("the sealed store was not sealed: %v", err)
	}
	if b, _ := os.ReadFile(store); bytes.Contains(b, w.secret) {
		t.Error("the sealed store holds the secret")
	}
	all, err := w.srv.Audit()
	records := brokertest.ResourceDecisions(t, all, 1)
	if err != nil || len(records) != 2 || records[0].Status != "affirming" || records[1].Status != "affirming" ||
		strings.Join(append(records[0].Released, records[1].Released...), ",") != broker.SealingKey+","+apiKeyPath {
		t.Errorf("the audit trail: %+v %v", all, err)
	}
}
