package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/brokertest"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
)

// TestSecretTour is the README's tour of secrets, command by command: a
// secret stored in the broker, the bundle pinned to the broker, a policy
// from the bundle granting exactly its secrets, the broker serving it on
// loopback, and the run, whose guest prints the secret's SHA-256.
func TestSecretTour(t *testing.T) {
	dir := t.TempDir()
	db, simKey := filepath.Join(dir, "broker.db"), filepath.Join(dir, "sim.key")
	secret := []byte("sk-tour-0123456789abcdef\n")
	valueFile := filepath.Join(dir, "api-key.txt")
	os.WriteFile(valueFile, secret, 0o600)
	if r := launch(t, "broker", "secret", "put", "--db", db, "default/tenant/api-key", valueFile); r.code != 0 || strings.Contains(r.stdout+r.stderr, "sk-tour") {
		t.Fatalf("secret put: %+v", r)
	}
	k := launch(t, "broker", "key", "--db", db)
	key, err := hex.DecodeString(strings.TrimSpace(k.stdout))
	if k.code != 0 || err != nil {
		t.Fatalf("broker key: %+v", k)
	}
	addr := brokertest.FreeAddr(t)
	bundle := copyBundle(t, testwasm.Example(t, "secret-consumer"), "name = \"secret-consumer\"\nversion = \"1.0.0\"\nprofiles = [\"debug\", \"staging\"]\n"+
		"[broker]\nurl = \"http://"+addr+"\"\nkey = \""+hex.EncodeToString(key)+"\"\n[secrets]\napi-key = \"default/tenant/api-key\"\ncert = \"default/tenant/cert\"\n[limits]\nwall_time = \"60s\"\n")
	other := filepath.Join(dir, "cert.pem")
	os.WriteFile(other, []byte("a certificate"), 0o600)
	launch(t, "broker", "secret", "put", "--db", db, "default/tenant/cert", other)

	p := launch(t, "policy", "new", "--from", bundle, "--profile", "debug", "--profile", "staging", "--backend", "sim", "--allow-insecure", "--sim-key", simKey)
	pol, err := attest.ParsePolicy([]byte(p.stdout))
	if p.code != 0 || err != nil {
		t.Fatalf("policy new: %+v %v", p, err)
	}
	b, _ := loader.Open(bundle)
	if len(pol.Grants) != 1 || !slices.Equal(pol.Grants[0].Resources, []string{"default/tenant/api-key", "default/tenant/cert"}) ||
		!slices.Equal(pol.Grants[0].Measurements, pol.Measurements) || len(pol.Measurements) != 2 ||
		!pol.Granted("default/tenant/api-key", loader.Measure(b, "debug"), "debug", "sim", attest.ClassInsecure) || pol.Granted("default/tenant/other", loader.Measure(b, "debug"), "debug", "sim", attest.ClassInsecure) {
		t.Errorf("policy new grants %+v:\n%s", pol.Grants, p.stdout)
	}
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte(p.stdout), 0o644)

	serve := []string{"broker", "serve", "--policy", policy, "--db", db, "--listen", addr}
	served := brokertest.Serve(t, run, serve...)
	r := launch(t, "run", cacheFlag(t), "--sim-key", simKey, bundle)
	sum := sha256.Sum256(secret)
	if r.code != 0 || r.stdout != hex.EncodeToString(sum[:])+"  /run/secrets/api-key\n" {
		t.Errorf("the run: %+v", r)
	}
	if strings.Contains(r.stdout+r.stderr, "sk-tour") {
		t.Errorf("the run showed the secret: %+v", r)
	}
	// Under staging the host sees nothing of it either; with the secret
	// removed from the broker, the run stops before the workload with the
	// code alone.
	if s := launch(t, "run", "--profile", "staging", "--no-cache", "--sim-key", simKey, bundle); s.code != 0 || s.stdout != "" {
		t.Errorf("the staging run: %+v", s)
	}
	served.Stop()
	launch(t, "broker", "secret", "rm", "--db", db, "default/tenant/cert")
	served = brokertest.Serve(t, run, serve...)
	s := launch(t, "run", "--profile", "staging", "--no-cache", "--sim-key", simKey, bundle)
	if s.code != errcode.ClassPolicy.ExitStatus() || !staticLine.MatchString(lastLine(s.stderr)) || !strings.Contains(s.stderr, "E3036 secret-refused") || strings.Contains(s.stderr, "default/tenant") {
		t.Errorf("a run whose secret is gone: %+v", s)
	}
	served.Stop()
	a := launch(t, "broker", "audit", "--db", db, "--json")
	var all []broker.AuditRecord
	if a.code != 0 || json.Unmarshal([]byte(a.stdout), &all) != nil {
		t.Fatalf("audit: %+v", a)
	}
	// Three runs, each one attestation and then a decision per resource
	// in path order: two released twice, then the one held no more
	// refused after the other was released.
	records := brokertest.ResourceDecisions(t, all, 3)
	if len(records) != 6 {
		t.Fatalf("audit: %d decisions: %+v", len(records), all)
	}
	for i, want := range []string{"default/tenant/api-key", "default/tenant/cert", "default/tenant/api-key", "default/tenant/cert", "default/tenant/api-key"} {
		if records[i].Status != "affirming" || !slices.Equal(records[i].Released, []string{want}) {
			t.Errorf("decision %d: %+v, want %s released", i, records[i], want)
		}
	}
	if last := records[5]; last.Status != "contraindicated" || len(last.Released) != 0 || !strings.Contains(strings.Join(last.Reasons, ";"), "default/tenant/cert is granted, and the broker holds nothing there") {
		t.Errorf("the last decision: %+v", last)
	}
	if strings.Contains(a.stdout, "sk-tour") {
		t.Error("the audit trail holds the secret")
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestSecretOverTLS: the same flow over https with a test CA (the launch
// binary trusting it through SSL_CERT_FILE): the bundle reads its secret,
// and a bundle with one byte of its manifest changed is refused before
// the workload with its code, both decisions in the audit trail.
func TestSecretOverTLS(t *testing.T) {
	dir := t.TempDir()
	testCA(t, dir)
	db, simKey := filepath.Join(dir, "broker.db"), filepath.Join(dir, "sim.key")
	secret := []byte("sk-tls-0123456789abcdef")
	valueFile := filepath.Join(dir, "api-key.txt")
	os.WriteFile(valueFile, secret, 0o600)
	if r := launch(t, "broker", "secret", "put", "--db", db, "default/tenant/api-key", valueFile); r.code != 0 {
		t.Fatalf("secret put: %+v", r)
	}
	key, _ := hex.DecodeString(strings.TrimSpace(launch(t, "broker", "key", "--db", db).stdout))
	addr := brokertest.FreeAddr(t)
	manifest := func(version string) string {
		return "name = \"secret-consumer\"\nversion = \"" + version + "\"\nprofiles = [\"debug\"]\n[broker]\nurl = \"https://" + addr + "\"\nkey = \"" + hex.EncodeToString(key) +
			"\"\n[secrets]\napi-key = \"default/tenant/api-key\"\n[limits]\nwall_time = \"60s\"\n"
	}
	bundle := copyBundle(t, testwasm.Example(t, "secret-consumer"), manifest("1.0.0"))
	changed := copyBundle(t, testwasm.Example(t, "secret-consumer"), manifest("1.0.1"))
	p := launch(t, "policy", "new", "--from", bundle, "--profile", "debug", "--backend", "sim", "--allow-insecure", "--sim-key", simKey)
	if p.code != 0 {
		t.Fatalf("policy new: %+v", p)
	}
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte(p.stdout), 0o644)
	served := brokertest.Serve(t, run, "broker", "serve", "--policy", policy, "--db", db, "--listen", addr, "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	served.WaitFor(t, served.Out, "listening on https://"+addr)
	bin := testwasm.Launch(t)
	runOver := func(b string) (string, string, int) {
		cmd := exec.Command(bin, "run", cacheFlag(t), "--sim-key", simKey, b)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+filepath.Join(dir, "ca.pem"))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	sum := sha256.Sum256(secret)
	if out, errs, code := runOver(bundle); code != 0 || out != hex.EncodeToString(sum[:])+"  /run/secrets/api-key\n" {
		t.Errorf("the run over TLS: %d %q %s", code, out, errs)
	}
	if out, errs, code := runOver(changed); code != errcode.ClassPolicy.ExitStatus() || out != "" || !strings.Contains(errs, errcode.BrokerRefused.String()) {
		t.Errorf("one byte changed, over TLS: %d %q %s", code, out, errs)
	}
	served.Stop()
	a := launch(t, "broker", "audit", "--db", db, "--json")
	var all []broker.AuditRecord
	if a.code != 0 || json.Unmarshal([]byte(a.stdout), &all) != nil {
		t.Fatalf("audit: %+v", a)
	}
	released, refused := false, false
	for _, r := range all {
		if r.Status == "affirming" && slices.Equal(r.Released, []string{"default/tenant/api-key"}) && r.Bundle != nil && r.Bundle.Version == "1.0.0" {
			released = true
		}
		if r.Status == "contraindicated" && strings.Contains(strings.Join(r.Reasons, "; "), "measurement") {
			refused = true
		}
	}
	if !released || !refused {
		t.Errorf("audit trail: released %v, refused %v: %+v", released, refused, all)
	}
}
