package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/brokertest"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
)

// TestSealedKeyFromBroker: a sealed mount whose key the tenant's broker
// releases, end to end through a launch run on the simulator: the broker
// verifies the run's evidence, the store opens on the next run and on
// another machine (another simulator key), and a broker that refuses,
// is not the pinned one, or is down stops the run before it starts,
// leaving the store as it was.
func TestSealedKeyFromBroker(t *testing.T) {
	srv, httpSrv := brokertest.Start(t)
	bundle := brokertest.Bundle(t, httpSrv.URL, srv.PublicKey())
	dir := t.TempDir()
	// Two machines' simulators, which the policy pins.
	pins := "allow_insecure = true\nsim_keys = [\"" + brokertest.SimKeyHex(t, filepath.Join(dir, "a.key")) + "\", \"" + brokertest.SimKeyHex(t, filepath.Join(dir, "b.key")) + "\"]\n"
	srv.SetPolicy(brokertest.PolicyFor(t, bundle, "debug", "sim", pins))
	store := filepath.Join(dir, "nb.sealed")
	run := func(simKey string, args ...string) result {
		return launch(t, append([]string{"run", cacheFlag(t), "--sim-key", filepath.Join(dir, simKey), "--sealed", store, bundle, "--"}, args...)...)
	}
	if r := run("a.key", "first"); r.code != 0 || !strings.Contains(r.stdout, "notebook: run 1\nrun 1: first\n") {
		t.Fatalf("first run: %+v", r)
	}
	if r := run("a.key", "second"); r.code != 0 || !strings.Contains(r.stdout, "run 1: first\nrun 2: second\n") {
		t.Fatalf("second run: %+v", r)
	}
	// The broker's key is the measurement's, not the machine's: the store
	// opens under another simulator key, where a TEE key would not.
	if r := run("b.key", "elsewhere"); r.code != 0 || !strings.Contains(r.stdout, "run 3: elsewhere\n") {
		t.Fatalf("another machine: %+v", r)
	}
	records, err := srv.Audit()
	if err != nil || len(releases(records)) != 3 {
		t.Fatalf("audit: %v %+v", err, records)
	}

	good, _ := os.ReadFile(store)
	for _, tc := range []struct {
		name   string
		setup  func() (bundle string, cleanup func())
		status int
		code   errcode.Code
	}{
		{"policy without the measurement", func() (string, func()) {
			other := brokertest.PolicyFor(t, bundle, "staging", "sim", pins)
			srv.SetPolicy(other)
			return bundle, func() { srv.SetPolicy(brokertest.PolicyFor(t, bundle, "debug", "sim", pins)) }
		}, errcode.ClassPolicy.ExitStatus(), errcode.BrokerRefused},
		{"policy without allow_insecure", func() (string, func()) {
			srv.SetPolicy(brokertest.PolicyFor(t, bundle, "debug", "sim", ""))
			return bundle, func() { srv.SetPolicy(brokertest.PolicyFor(t, bundle, "debug", "sim", pins)) }
		}, errcode.ClassPolicy.ExitStatus(), errcode.BrokerRefused},
		{"a stranger's simulator", func() (string, func()) {
			return bundle, func() {}
		}, errcode.ClassPolicy.ExitStatus(), errcode.BrokerRefused},
		{"another broker's key pinned", func() (string, func()) {
			// The broker releases to this bundle's measurement: the run
			// refuses the answer, which its pinned key did not sign.
			pub, _, _ := ed25519.GenerateKey(rand.Reader)
			b := brokertest.Bundle(t, httpSrv.URL, pub)
			srv.SetPolicy(brokertest.PolicyFor(t, b, "debug", "sim", pins))
			return b, func() { srv.SetPolicy(brokertest.PolicyFor(t, bundle, "debug", "sim", pins)) }
		}, errcode.ClassPolicy.ExitStatus(), errcode.BrokerAnswerInvalid},
		{"broker down", func() (string, func()) {
			return brokertest.Bundle(t, "http://127.0.0.1:1", srv.PublicKey()), func() {}
		}, errcode.ClassInternal.ExitStatus(), errcode.BrokerUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, cleanup := tc.setup()
			defer cleanup()
			simKey := "a.key"
			if strings.Contains(tc.name, "stranger") {
				simKey = "stranger.key"
			}
			r := launch(t, "run", cacheFlag(t), "--sim-key", filepath.Join(dir, simKey), "--sealed", store, b)
			if r.code != tc.status || !strings.Contains(r.stderr, tc.code.String()) || strings.Contains(r.stdout, "notebook: run") {
				t.Fatalf("want %v, got %+v", tc.code, r)
			}
			if got, _ := os.ReadFile(store); !bytes.Equal(got, good) {
				t.Error("the store changed")
			}
		})
	}
	// Under staging the host sees the code only.
	srv.SetPolicy(brokertest.PolicyFor(t, bundle, "debug", "sim", ""))
	r := launch(t, "run", "--profile", "staging", "--sim-key", filepath.Join(dir, "a.key"), "--sealed", filepath.Join(dir, "s.sealed"), bundle)
	if lines := hostVisible(r.stderr); r.code != errcode.ClassPolicy.ExitStatus() || len(lines) != 1 || !staticLine.MatchString(lines[0]) || !strings.Contains(lines[0], "E3013") {
		t.Errorf("staging refusal: %+v", r)
	}
}

// TestBrokerCommand: the tenant's workflow with real processes' code:
// make the broker's database and read its key, pin it in a manifest, write
// the policy from the bundle, serve, run, stop, read the audit trail.
func TestBrokerCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "broker.db")
	k := launch(t, "broker", "key", "--db", db)
	key, err := hex.DecodeString(strings.TrimSpace(k.stdout))
	if k.code != 0 || err != nil || len(key) != 32 {
		t.Fatalf("broker key: %+v", k)
	}
	if again := launch(t, "broker", "key", "--db", db); strings.TrimSpace(again.stdout) != hex.EncodeToString(key) {
		t.Errorf("the key changed between reads: %+v", again)
	}
	// The port is the broker's to choose; the manifest needs it, so take
	// one and hand it over.
	addr := brokertest.FreeAddr(t)
	bundle := brokertest.Bundle(t, "http://"+addr, key)
	p := launch(t, "policy", "new", "--from", bundle, "--profile", "debug", "--backend", "sim", "--allow-insecure", "--sim-key", filepath.Join(dir, "sim.key"))
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte(p.stdout), 0o644)

	served := brokertest.Serve(t, run, "broker", "serve", "--policy", policy, "--db", db, "--listen", addr)
	if !strings.Contains(served.Out.String(), "broker key: "+hex.EncodeToString(key)) {
		t.Errorf("serve output %q", served.Out.String())
	}
	if r := launch(t, "broker", "key", "--db", db); r.code != errcode.ClassInternal.ExitStatus() || !strings.Contains(r.stderr, "in use") {
		t.Errorf("reading the key while serving: %+v", r)
	}
	store := filepath.Join(dir, "nb.sealed")
	if r := launch(t, "run", cacheFlag(t), "--sim-key", filepath.Join(dir, "sim.key"), "--sealed", store, bundle, "--", "hello"); r.code != 0 || !strings.Contains(r.stdout, "run 1: hello") {
		t.Fatalf("run against the broker: %+v", r)
	}
	// While it serves: the audit trail over its socket, naming the
	// bundle the measurement is bound to; the index at GET /; one line
	// per request on stderr.
	if a := launch(t, "broker", "audit", "--db", db); a.code != 0 || !regexp.MustCompile(`(?m)^\S+ affirming +sim +debug +notebook [0-9a-f]{96} 127\.0\.0\.1 released=\[ampoule/sealing/key\]$`).MatchString(a.stdout) {
		t.Errorf("audit while serving: %+v", a)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	var idx broker.Index
	if json.NewDecoder(resp.Body).Decode(&idx) != nil || resp.StatusCode != 200 || idx.Service != "ampoule key broker" || idx.Version == "" || idx.Key != hex.EncodeToString(key) {
		t.Errorf("GET /: %s %+v", resp.Status, idx)
	}
	resp.Body.Close()
	if code := served.Stop(); code != 0 {
		t.Errorf("serve ended with %d", code)
	}
	lines := regexp.MustCompile(`(?m)^\S+Z 127\.0\.0\.1 (GET|POST) (\S+) (\d+) (\S+) \S+$`).FindAllStringSubmatch(served.Err.String(), -1)
	var got []string
	for _, l := range lines {
		got = append(got, strings.Join(l[1:], " "))
	}
	if want := "POST /kbs/v0/auth 200 challenge,POST /kbs/v0/attest 200 affirming,GET /kbs/v0/resource/ampoule/sealing/key 200 released,GET / 200 -"; strings.Join(got, ",") != want {
		t.Errorf("request lines %q, want %q; stderr:\n%s", got, want, served.Err.String())
	}
	a := launch(t, "broker", "audit", "--db", db, "--json")
	var records []broker.AuditRecord
	json.Unmarshal([]byte(a.stdout), &records)
	if r := releases(records); a.code != 0 || len(r) != 1 || r[0].Status != "affirming" || r[0].Released[0] != broker.SealingKeyResource ||
		r[0].Bundle == nil || *r[0].Bundle != (broker.AuditBundle{Name: "notebook", Bound: true}) {
		t.Errorf("audit: %+v", a)
	}
	// A policy accepting the simulator without pinning a key is not served.
	unpinned := filepath.Join(dir, "unpinned.toml")
	os.WriteFile(unpinned, []byte(regexp.MustCompile(`(?m)^sim_keys = .*$`).ReplaceAllString(p.stdout, "")), 0o644)
	if r := launch(t, "broker", "serve", "--policy", unpinned, "--db", db, "--listen", "127.0.0.1:0"); r.code != errcode.ClassUsage.ExitStatus() ||
		!strings.Contains(r.stderr, errcode.PolicyInvalid.String()) || !strings.Contains(r.stderr, "sim_keys") || strings.Contains(r.stdout, "listening") {
		t.Errorf("serve with a policy pinning no simulator key: %+v", r)
	}
	if r := launch(t, "broker", "serve", "--db", db); r.code != errcode.ClassUsage.ExitStatus() {
		t.Errorf("serve without a policy: %+v", r)
	}
	if r := launch(t, "broker", "rotate"); r.code != errcode.ClassUsage.ExitStatus() {
		t.Errorf("an unknown subcommand: %+v", r)
	}
}

// TestBrokerAuditShowsAggregates: refused decisions beyond the audit
// budget are shown as counts, with their reasons, by broker audit.
func TestBrokerAuditShowsAggregates(t *testing.T) {
	db := auditedBroker(t, filepath.Join(t.TempDir(), "broker.db"))
	r := launch(t, "broker", "audit", "--db", db)
	if r.code != 0 || !strings.Contains(r.stdout, "2 refused decisions beyond the audit budget") || !strings.Contains(r.stdout, "reason the nonce was not issued by this broker: 2") {
		t.Errorf("audit: %+v", r)
	}
}

// releases are the records that released a resource; tokens are
// counted apart, by tokens.
func releases(records []broker.AuditRecord) []broker.AuditRecord {
	var out []broker.AuditRecord
	for _, r := range records {
		if len(r.Released) > 0 && !slices.Equal(r.Released, []string{broker.TokenAsked}) {
			out = append(out, r)
		}
	}
	return out
}

// tokens counts the records of tokens issued.
func tokens(records []broker.AuditRecord) int {
	n := 0
	for _, r := range records {
		if slices.Equal(r.Released, []string{broker.TokenAsked}) {
			n++
		}
	}
	return n
}

// TestBrokerReloadsPolicyOnSIGHUP: a serving broker reads its policy file
// again on SIGHUP: a run its first policy refused then gets its key, and
// a policy that does not read leaves the one served as it was.
func TestBrokerReloadsPolicyOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "broker.db")
	k := launch(t, "broker", "key", "--db", db)
	key, _ := hex.DecodeString(strings.TrimSpace(k.stdout))
	addr := brokertest.FreeAddr(t)
	bundle := brokertest.Bundle(t, "http://"+addr, key)
	policyFor := func(profile string) string {
		return launch(t, "policy", "new", "--from", bundle, "--profile", profile, "--backend", "sim", "--allow-insecure", "--sim-key", filepath.Join(dir, "sim.key")).stdout
	}
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte(policyFor("staging")), 0o644)
	served := brokertest.Serve(t, run, "broker", "serve", "--policy", policy, "--db", db, "--listen", addr)
	runOnce := func() result {
		return launch(t, "run", cacheFlag(t), "--sim-key", filepath.Join(dir, "sim.key"), "--sealed", filepath.Join(dir, "nb.sealed"), bundle, "--", "x")
	}
	if r := runOnce(); r.code == 0 || !strings.Contains(r.stderr, errcode.BrokerRefused.String()) {
		t.Fatalf("a run the first policy does not accept: %+v", r)
	}
	os.WriteFile(policy, []byte(policyFor("debug")), 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	served.WaitFor(t, served.Err, "policy reloaded from "+policy)
	if r := runOnce(); r.code != 0 {
		t.Fatalf("after the reload: %+v", r)
	}
	os.WriteFile(policy, []byte("measurements = \"not a list\"\n"), 0o644)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	served.WaitFor(t, served.Err, "the policy was not reloaded, the one served stays")
	if r := runOnce(); r.code != 0 {
		t.Fatalf("after a reload that failed: %+v", r)
	}
	if code := served.Stop(); code != 0 {
		t.Errorf("serve ended with %d", code)
	}
}

// testCA writes a test CA's certificate and a server certificate it
// issues for 127.0.0.1 (PEM) into dir: ca.pem, cert.pem, key.pem.
func testCA(t *testing.T, dir string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ampoule test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// TestBrokerTLS: serve over TLS with a certificate of a test CA; a run
// (the launch binary, trusting the CA through SSL_CERT_FILE) takes its
// key over https, and without the CA it cannot reach the broker; plain
// HTTP beyond loopback is refused, on loopback it is served with a
// warning; --tls-cert without --tls-key is a usage error.
func TestBrokerTLS(t *testing.T) {
	dir := t.TempDir()
	testCA(t, dir)
	db := filepath.Join(dir, "broker.db")
	k := launch(t, "broker", "key", "--db", db)
	key, _ := hex.DecodeString(strings.TrimSpace(k.stdout))
	addr := brokertest.FreeAddr(t)
	bundle := brokertest.Bundle(t, "https://"+addr, key)
	simKey := filepath.Join(dir, "sim.key")
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte(launch(t, "policy", "new", "--from", bundle, "--profile", "debug", "--backend", "sim", "--allow-insecure", "--sim-key", simKey).stdout), 0o644)

	if r := launch(t, "broker", "serve", "--policy", policy, "--db", db, "--listen", "0.0.0.0:0"); r.code != errcode.ClassUsage.ExitStatus() || !strings.Contains(r.stderr, "loopback only") || !strings.Contains(r.stderr, "--tls-cert") {
		t.Errorf("plain HTTP beyond loopback: %+v", r)
	}
	if r := launch(t, "broker", "serve", "--policy", policy, "--db", db, "--tls-cert", filepath.Join(dir, "cert.pem")); r.code != errcode.ClassUsage.ExitStatus() {
		t.Errorf("a certificate without its key: %+v", r)
	}
	served := brokertest.Serve(t, run, "broker", "serve", "--policy", policy, "--db", db, "--listen", addr, "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	served.WaitFor(t, served.Out, "listening on https://"+addr)
	if strings.Contains(served.Err.String(), "plain HTTP") {
		t.Errorf("a TLS broker warned of plain HTTP: %s", served.Err.String())
	}
	bin := testwasm.Launch(t)
	runWith := func(env ...string) (string, int) {
		cmd := exec.Command(bin, "run", cacheFlag(t), "--sim-key", simKey, "--sealed", filepath.Join(dir, "nb.sealed"), bundle, "--", "over tls")
		cmd.Env = append(os.Environ(), env...)
		outb, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(outb), code
	}
	if o, code := runWith("SSL_CERT_FILE=" + filepath.Join(dir, "ca.pem")); code != 0 || !strings.Contains(o, "run 1: over tls") {
		t.Fatalf("a run trusting the test CA: %d %s", code, o)
	}
	other := t.TempDir()
	testCA(t, other)
	if o, code := runWith("SSL_CERT_FILE=" + filepath.Join(other, "ca.pem")); code == 0 || !strings.Contains(o, errcode.BrokerUnavailable.String()) || !strings.Contains(o, "certificate") {
		t.Errorf("a run not trusting the broker's CA: %d %s", code, o)
	}
	served.Stop()
	// Plain HTTP on loopback: served, with a warning.
	plain := brokertest.Serve(t, run, "broker", "serve", "--policy", policy, "--db", db, "--listen", "127.0.0.1:0")
	plain.WaitFor(t, plain.Out, "listening on http://")
	if !strings.Contains(plain.Err.String(), "warning: serving plain HTTP on 127.0.0.1:") {
		t.Errorf("no warning of plain HTTP: %q", plain.Err.String())
	}
	plain.Stop()
}

// kbsCycle is one KBS exchange of a simulator run for measurement m:
// the session, the attest request's body (for a replay), whether the
// attest and the resource were acknowledged, and the resource.
type kbsCycle struct {
	cookie     string
	attestBody []byte
	attested   bool
	released   []byte
}

// runKBSCycle runs one exchange against url with the simulator key be.
func runKBSCycle(t *testing.T, url string, be *sim.Backend, m [48]byte, profile string) (kbsCycle, error) {
	var c kbsCycle
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	client := &kbs.Client{URL: url, HTTP: &http.Client{Timeout: 5 * time.Second}}
	sess, err := client.Auth(context.Background(), broker.TeeSim, key)
	if err != nil {
		return c, err
	}
	pub, nonce := key.PublicKey().Bytes(), sess.ReportNonce()
	ev, err := be.Attest(context.Background(), tee.ReportData(m, pub, nonce))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sim.Verify(ev)
	env := &tee.Envelope{Version: tee.EnvelopeVersion, Kind: sim.Kind, Insecure: true, Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: hex.EncodeToString(m[:]), Profile: profile, RuntimeKey: pub, Nonce: nonce, Issued: st.Issued}
	primary, _ := kbs.AmpoulePrimary(env, nil)
	jwk, _ := kbs.JWKFromECDH(key.PublicKey())
	c.attestBody, _ = json.Marshal(kbs.Attestation{RuntimeData: kbs.RuntimeData{Nonce: sess.Challenge(), TeePubKey: jwk}, TeeEvidence: kbs.CompositeEvidence{PrimaryEvidence: primary}})
	c.cookie = sess.Cookie()
	if _, err := sess.Attest(context.Background(), primary); err != nil {
		return c, err
	}
	c.attested = true
	c.released, err = sess.Resource(context.Background(), broker.SealingKeyResource)
	return c, err
}

// TestBrokerKill9KeepsAcknowledged: the broker (the launch binary) is
// killed with SIGKILL while clients run KBS exchanges; restarted on the
// same database, it has an audit record of every release it
// acknowledged, refuses every acknowledged session's nonce as used, and
// releases the same sealing key.
func TestBrokerKill9KeepsAcknowledged(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "broker.db")
	simKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	be := sim.New(simKey)
	m := [48]byte{0x42}
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte("measurements = [\""+hex.EncodeToString(m[:])+"\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\nsim_keys = [\""+hex.EncodeToString(simKey.Public().(ed25519.PublicKey))+"\"]\n"), 0o644)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	url := "http://" + addr
	bin := testwasm.Launch(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "broker", "serve", "--policy", policy, "--db", db, "--listen", addr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if resp, err := http.Get(url + "/"); err == nil {
				resp.Body.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				t.Fatal("the broker did not start")
			}
		}
	}
	cmd := start()
	var mu sync.Mutex
	var acked []kbsCycle
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, _ := runKBSCycle(t, url, be, m, "staging")
				if c.attested {
					mu.Lock()
					acked = append(acked, c)
					mu.Unlock()
				}
			}
		}()
	}
	// Secrets stored through the serving broker's administration socket
	// while the exchanges run: each one acknowledged must be there after
	// the restart, listed with its value's size.
	var puts []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			path := fmt.Sprintf("default/kill9/s%d", i)
			put := exec.Command(bin, "broker", "secret", "put", "--db", db, path, "-")
			put.Stdin = strings.NewReader("value of " + path)
			if put.Run() == nil {
				mu.Lock()
				puts = append(puts, path)
				mu.Unlock()
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	close(stop)
	wg.Wait()
	released := 0
	for _, c := range acked {
		if c.released != nil {
			released++
		}
	}
	if len(acked) == 0 || released == 0 {
		t.Fatalf("no exchange was acknowledged before the kill (%d attested, %d released)", len(acked), released)
	}
	cmd = start()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	a := launch(t, "broker", "audit", "--db", db, "--json")
	var records []broker.AuditRecord
	if err := json.Unmarshal([]byte(a.stdout), &records); a.code != 0 || err != nil {
		t.Fatalf("audit after the restart: %+v", a)
	}
	if got := len(releases(records)); got < released {
		t.Errorf("%d releases acknowledged, %d in the audit trail", released, got)
	}
	if got := tokens(records); got < len(acked) {
		t.Errorf("%d tokens acknowledged, %d in the audit trail", len(acked), got)
	}
	if len(puts) == 0 {
		t.Error("no secret put was acknowledged before the kill")
	}
	list := launch(t, "broker", "secret", "list", "--db", db)
	for _, path := range puts {
		if !regexp.MustCompile(regexp.QuoteMeta(path) + ` +` + fmt.Sprint(len("value of "+path)) + ` bytes`).MatchString(list.stdout) {
			t.Errorf("secret %s acknowledged before the kill, not listed after the restart:\n%s", path, list.stdout)
		}
	}
	var key []byte
	for _, c := range acked {
		req, _ := http.NewRequest(http.MethodPost, url+kbs.AttestPath, bytes.NewReader(c.attestBody))
		req.AddCookie(&http.Cookie{Name: kbs.SessionCookie, Value: c.cookie})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		p, err := kbs.DecodeProblem(resp.Body, resp.StatusCode)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 401 || !strings.Contains(p.Detail, "used already") && !strings.Contains(p.Detail, "expired") {
			t.Fatalf("an acknowledged session's nonce, replayed after the restart: %d %+v %v", resp.StatusCode, p, err)
		}
		if c.released != nil {
			key = c.released
		}
	}
	c, err := runKBSCycle(t, url, be, m, "staging")
	if err != nil || !bytes.Equal(c.released, key) {
		t.Errorf("the sealing key after the restart: %x, before %x (%v)", c.released, key, err)
	}
	t.Logf("%d attested, %d released, %d secrets stored before the kill; %d releases audited", len(acked), released, len(puts), len(releases(records)))
}
