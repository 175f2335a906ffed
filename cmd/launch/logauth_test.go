package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/brokertest"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
)

// genuineRun runs the leak example under staging on the simulator and
// returns its log file and the log's header, as the tenant reads it.
func genuineRun(t *testing.T, key, recipient, bundle string) (string, logging.Header) {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), "run.log")
	if r := launch(t, "run", "--profile", "staging", "--log-out", logFile, bundle); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	return logFile, readHeader(t, key, logFile)
}

func readHeader(t *testing.T, key, logFile string) logging.Header {
	t.Helper()
	idData, _ := os.ReadFile(key)
	id, err := logging.ParseIdentity(idData)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := logging.NewReader(f, id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Header()
}

// TestForgedLogsAreRefused writes logs as a host would forge them: with
// the project's own writer, the manifest's recipient, a genuine log's
// public header (ref, measurement, profile) and evidence it copied,
// altered or made itself, carrying a fake stdout line. None may pass as
// the run's log; a genuine log of another run is refused under the ref
// and nonce of this one; the genuine log verifies under the tenant's
// policy.
func TestForgedLogsAreRefused(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // the simulator's key
	key, recipient := tenant(t)
	bundle := leakBundle(t, recipient, "stdout")
	genuine, gh := genuineRun(t, key, recipient, bundle)
	older, oh := genuineRun(t, key, recipient, bundle)
	genv, err := tee.DecodeEnvelope(gh.Envelope)
	if err != nil {
		t.Fatal(err)
	}

	// The tenant's policy pins the simulator key its runs use.
	claims, err := sim.Verify(tee.Evidence{Raw: genv.Evidence, Collateral: genv.Collateral})
	if err != nil {
		t.Fatal(err)
	}
	p := launch(t, "policy", "new", "--from", bundle, "--profile", "staging", "--backend", "sim", "--allow-insecure")
	if p.code != 0 {
		t.Fatalf("policy new: %+v", p)
	}
	policy := filepath.Join(t.TempDir(), "policy.toml")
	// policy new pins this machine's simulator key; this run's is pinned
	// instead.
	pinned := regexp.MustCompile(`(?m)^sim_keys = .*$`).ReplaceAllString(p.stdout, "")
	os.WriteFile(policy, []byte(pinned+"\nsim_keys = [\""+hex.EncodeToString(claims.PublicKey)+"\"]\n"), 0o644)

	// The host's tools: the recipient from the manifest and a key of its own.
	rcpt, err := logging.ParseRecipient(recipient)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hostPub, _ := hostKey.PublicKey.Bytes()
	forge := func(envelope []byte) string {
		var buf bytes.Buffer
		h := logging.Header{Ref: gh.Ref, Measurement: gh.Measurement, Profile: gh.Profile, Started: gh.Started, Envelope: envelope}
		w, err := logging.NewWriter(&buf, rcpt, h, hostKey, logging.Options{})
		if err != nil {
			t.Fatal(err)
		}
		w.Log(logging.LevelInfo, logging.SourceStdout, []byte("FORGED: all is well\n"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(t.TempDir(), "forged.log")
		os.WriteFile(f, buf.Bytes(), 0o644)
		return f
	}
	encode := func(e *tee.Envelope) []byte {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m, _ := genv.MeasurementBytes()

	// Evidence the host made with a simulator key of its own, binding its
	// key, the genuine measurement and nonce.
	hostSim := sim.New(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32)))
	ev, err := hostSim.Attest(context.Background(), tee.ReportData(m, hostPub, genv.Nonce))
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := sim.Verify(ev)
	simFake := *genv
	simFake.Evidence, simFake.Collateral, simFake.RuntimeKey, simFake.Issued = ev.Raw, ev.Collateral, hostPub, hc.Issued
	// The genuine evidence with the host's key written in.
	rekeyed := *genv
	rekeyed.RuntimeKey = hostPub
	// Hardware evidence the host made up.
	snpFake := *genv
	snpFake.Kind, snpFake.Insecure, snpFake.RuntimeKey = "sev-snp", false, hostPub
	snpFake.Evidence, snpFake.Collateral = bytes.Repeat([]byte{1}, 1184), [][]byte{[]byte("not a certificate")}

	for _, tc := range []struct {
		name string
		args []string
		code errcode.Code
	}{
		{"the genuine log, judged", []string{"--policy", policy, "--ref", gh.Ref, "--nonce", hex.EncodeToString(genv.Nonce), genuine}, 0},
		{"copied evidence of this run", []string{forge(gh.Envelope)}, errcode.LogUnbound},
		{"copied evidence of another run", []string{forge(oh.Envelope)}, errcode.LogUnbound},
		{"evidence with the host's key written in", []string{forge(encode(&rekeyed))}, errcode.LogUnbound},
		{"made-up hardware evidence", []string{forge(encode(&snpFake))}, errcode.LogUnbound},
		{"the host's own simulator evidence, judged", []string{"--policy", policy, forge(encode(&simFake))}, errcode.EvidenceRefused},
		{"no evidence at all", []string{forge([]byte(`{"version":1}`))}, errcode.LogUnbound},
		{"an older log under this run's ref", []string{"--policy", policy, "--ref", gh.Ref, older}, errcode.LogOtherRun},
		{"an older log under this run's nonce", []string{"--nonce", hex.EncodeToString(genv.Nonce), older}, errcode.LogOtherRun},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := launch(t, append([]string{"logs", "decrypt", "--identity", key}, tc.args...)...)
			if tc.code == 0 {
				if r.code != 0 || !strings.Contains(r.stderr, "launch: log verified: ref "+gh.Ref) || !strings.Contains(r.stderr, "affirming under the policy") ||
					!strings.Contains(r.stderr, hex.EncodeToString(genv.Nonce)) || !strings.Contains(r.stderr, "anyone there can forge this log") {
					t.Errorf("%+v", r)
				}
				return
			}
			if r.code != tc.code.Class().ExitStatus() || !strings.Contains(r.stderr, tc.code.String()) {
				t.Errorf("%+v, want %v", r, tc.code)
			}
			if strings.Contains(r.stdout+r.stderr, "FORGED") || strings.Contains(r.stderr, "log verified") {
				t.Errorf("a forged record was shown: %+v", r)
			}
		})
	}

	// Without a policy the host's own simulator evidence is authentic
	// simulator evidence: the tenant is told, plainly, that nothing was
	// verified and that anyone can forge such a log.
	r := launch(t, "logs", "decrypt", "--identity", key, forge(encode(&simFake)))
	if strings.Contains(r.stderr, "log verified") || !strings.Contains(r.stderr, "evidence not judged") || !strings.Contains(r.stderr, "anyone there can forge this log") {
		t.Errorf("unjudged simulator evidence: %+v", r)
	}
}

// TestByteAtATimeLog: a guest writing 1 MiB to stdout one byte at a time
// (one host call and one pipe write each) leaves a log of at most twice
// the bytes plus the writer's allowance and the header, and its stdout
// decrypts byte for byte.
func TestByteAtATimeLog(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // the simulator's key
	key, recipient := tenant(t)
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "module.wasm"), testwasm.Committed(t, filepath.Join("testdata", "byte-at-a-time.wat")), 0o644); err != nil {
		t.Fatal(err)
	}
	writeManifest(t, bundle, "name = \"bytes\"\nprofiles = [\"staging\"]\nlog_recipient = \""+recipient+"\"\n[limits]\noutput = \"2MiB\"\nwall_time = \"60s\"\n")
	logFile := filepath.Join(t.TempDir(), "run.log")
	if r := launch(t, "run", "--profile", "staging", "--log-out", logFile, bundle); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(i)
	}
	d := launch(t, "logs", "decrypt", "--identity", key, logFile)
	if d.code != 0 || d.stdout != string(want) {
		t.Fatalf("decrypt: code %d, %d bytes of stdout, want the %d written; %s", d.code, len(d.stdout), len(want), d.stderr)
	}
	st, err := os.Stat(logFile)
	if err != nil {
		t.Fatal(err)
	}
	header := len(readHeaderLine(t, logFile))
	// The runtime's own records: a few, each at most a small bucket.
	const runtimeRecords = 16 << 10
	bound := int64(2*len(want) + logging.WasteAllowance + 2*logging.StreamReserve + header + runtimeRecords)
	if st.Size() > bound {
		t.Errorf("the log is %d bytes for 1 MiB of output, more than %d", st.Size(), bound)
	}
	t.Logf("1 MiB written a byte at a time: a log of %d bytes (%.2f×), header %d", st.Size(), float64(st.Size())/float64(len(want)), header)
}

// readHeaderLine returns a log's first line.
func readHeaderLine(t *testing.T, logFile string) []byte {
	t.Helper()
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.IndexByte(data, '\n')
	if i < 0 {
		t.Fatal("no header line")
	}
	return data[:i+1]
}

// TestBrokerRunLogCarriesTheBrokersNonce: a staging run whose sealed mount
// takes its key from the broker attests once, with the broker's nonce,
// and the same evidence opens the tenant's log: the log verifies under the
// broker's nonce and the tenant's policy, and under no other nonce.
func TestBrokerRunLogCarriesTheBrokersNonce(t *testing.T) {
	s, err := broker.Open(filepath.Join(t.TempDir(), "broker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mu sync.Mutex
	var nonces [][]byte
	h := s.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if r.URL.Path == kbs.AuthPath {
			var ch kbs.Challenge
			json.Unmarshal(rec.Body.Bytes(), &ch)
			nonce, _ := base64.StdEncoding.DecodeString(ch.Nonce)
			mu.Lock()
			nonces = append(nonces, nonce)
			mu.Unlock()
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()

	key, recipient := tenant(t)
	bundle := copyBundle(t, testwasm.Example(t, "notebook"), "name = \"notebook\"\nprofiles = [\"staging\"]\nlog_recipient = \""+recipient+"\"\n"+
		"[broker]\nurl = \""+srv.URL+"\"\nkey = \""+hex.EncodeToString(s.PublicKey())+"\"\n[sealed]\nmount = \"/sealed\"\nkey = \"broker\"\n[limits]\nwall_time = \"10s\"\n")
	dir := t.TempDir()
	simKey := filepath.Join(dir, "sim.key")
	if err := s.SetPolicy(brokertest.PolicyFor(t, bundle, "staging", "sim", "allow_insecure = true\nsim_keys = [\""+brokertest.SimKeyHex(t, simKey)+"\"]\n")); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "run.log")
	if r := launch(t, "run", "--profile", "staging", "--sim-key", simKey, "--sealed", filepath.Join(dir, "nb.sealed"), "--log-out", logFile, bundle); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(nonces) != 1 {
		t.Fatalf("the run asked the broker for %d nonces, want 1", len(nonces))
	}
	p := launch(t, "policy", "new", "--from", bundle, "--profile", "staging", "--backend", "sim", "--allow-insecure", "--sim-key", simKey)
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte(p.stdout), 0o644)
	d := launch(t, "logs", "decrypt", "--identity", key, "--policy", policy, "--nonce", hex.EncodeToString(nonces[0]), logFile)
	if d.code != 0 || !strings.Contains(d.stderr, "launch: log verified") || !strings.Contains(d.stdout, "notebook: run 1") {
		t.Errorf("the log under the broker's nonce: %+v", d)
	}
	other := launch(t, "logs", "decrypt", "--identity", key, "--policy", policy, "--nonce", strings.Repeat("ab", 32), logFile)
	if other.code == 0 || !strings.Contains(other.stderr, errcode.LogOtherRun.String()) {
		t.Errorf("the log under another nonce: %+v", other)
	}
}
