package main

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// snakeCase is a JSON key in launch's one style.
var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// dataKeyed are the objects of launch's JSON whose keys are data, not
// names of fields: a manifest's environment, the broker's counts by value.
var dataKeyed = map[string]bool{
	"canonical_manifest.env": true,
	"[].aggregate.statuses":  true, "[].aggregate.reasons": true,
	"[].aggregate.remotes": true, "[].aggregate.measurements": true,
}

// badKeys walks a decoded JSON value and returns the path of every object
// key that is not snake_case, and how many keys it checked.
func badKeys(v any, path string) (bad []string, n int) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := strings.TrimPrefix(path+"."+k, ".")
			if !dataKeyed[path] {
				n++
				if !snakeCase.MatchString(k) {
					bad = append(bad, p)
				}
			}
			b, m := badKeys(e, p)
			bad, n = append(bad, b...), n+m
		}
	case []any:
		for _, e := range v {
			b, m := badKeys(e, path+"[]")
			bad, n = append(bad, b...), n+m
		}
	}
	return bad, n
}

func TestBadKeys(t *testing.T) {
	var v any
	json.Unmarshal([]byte(`{"a_b":1,"x":[{"StaticErrors":true,"ok":{"camelCase":1}}],"canonical_manifest":{"env":{"HOME":"/"}}}`), &v)
	bad, n := badKeys(v, "")
	sort.Strings(bad)
	if fmt.Sprint(bad) != "[x[].StaticErrors x[].ok.camelCase]" || n != 7 {
		t.Errorf("bad %v of %d", bad, n)
	}
}

// TestJSONIsSnakeCase runs every command that takes --json, on real input
// (a run's evidence, its log, a broker's audit trail with an aggregate, the
// SEV-SNP report and TDX quote in testdata), and checks that every key of
// what it prints, at every depth, is snake_case. The commands are found
// from their help: one that gains --json and is not run here fails it.
func TestJSONIsSnakeCase(t *testing.T) {
	dir := t.TempDir()
	hello := testwasm.Example(t, "hello")
	samples := filepath.Join(testwasm.Root(t), "testdata")
	simKey := filepath.Join(dir, "sim.key")
	nonce := "00112233445566778899aabbccddeeff"

	a := launch(t, "attest", "--sim-key", simKey, "--nonce", nonce, "--profile", "staging", hello)
	evidence := writeFile(t, dir, "evidence.json", []byte(a.stdout))
	p := launch(t, "policy", "new", "--from", hello, "--profile", "staging", "--backend", "sim", "--allow-insecure", "--sim-key", simKey)
	policy := writeFile(t, dir, "policy.toml", []byte(p.stdout))
	if a.code != 0 || p.code != 0 {
		t.Fatalf("attest %+v, policy %+v", a, p)
	}

	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	idFile, err := id.Marshal(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	identity := writeFile(t, dir, "tenant.key", idFile)
	tiny := filepath.Join(samples, "tiny")
	manifest, _ := os.ReadFile(filepath.Join(tiny, "ampoule.toml"))
	bundle := copyBundle(t, tiny, "log_recipient = \""+id.Recipient().String()+"\"\n"+string(manifest))
	runLog := filepath.Join(dir, "run.log")
	if r := launch(t, "run", "--profile", "staging", "--sim-key", simKey, "--log-out", runLog, bundle); r.code != 0 {
		t.Fatalf("run: %+v", r)
	}

	db := auditedBroker(t, filepath.Join(dir, "broker.db"))

	const at = "2026-01-01T00:00:00Z"
	cases := map[string][]string{
		"measure":       {"measure", "--json", hello},
		"profiles":      {"profiles", "--json"},
		"gate":          {"gate", "--json"},
		"errors":        {"errors", "--json"},
		"version":       {"version", "--json"},
		"platform info": {"platform", "info", "--sim-key", simKey, "--json"},
		"verify":        {"verify", "--policy", policy, "--nonce", nonce, "--json", evidence},
		"verify --snp-report": {"verify", "--snp-report", filepath.Join(samples, "snp", "report.bin"), "--vcek", filepath.Join(samples, "snp", "vcek.der"),
			"--chain", filepath.Join(samples, "snp", "cert_chain.pem"), "--at", at, "--json"},
		"verify --tdx-quote": {"verify", "--tdx-quote", filepath.Join(samples, "tdx", "quote.dat"), "--at", at, "--json"},
		"logs decrypt":       {"logs", "decrypt", "--identity", identity, "--json", runLog},
		"broker audit":       {"broker", "audit", "--db", db, "--json"},
		"cache info":         {"cache", "info", "--cache-dir", t.TempDir(), "--json"},
	}
	for name, args := range cases {
		r := launch(t, args...)
		if r.code != 0 {
			t.Errorf("%s: %+v", name, r)
			continue
		}
		// One JSON value, or (logs decrypt) one a line.
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		keys, values := 0, 0
		for dec.More() {
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Errorf("%s: not JSON: %v\n%s", name, err, r.stdout)
				break
			}
			values++
			bad, n := badKeys(v, "")
			keys += n
			if len(bad) > 0 {
				sort.Strings(bad)
				t.Errorf("%s --json: keys not snake_case: %v", name, bad)
			}
		}
		if values == 0 || keys == 0 {
			t.Errorf("%s --json printed %d values, %d keys: %q", name, values, keys, r.stdout)
		}
	}

	// Every command taking --json is one of those above.
	jsonFlag := regexp.MustCompile(`(?m)^  -json\b`)
	for _, c := range program().Commands {
		var helps [][]string
		switch c.Name {
		case "logs":
			helps = [][]string{{"logs", "decrypt", "--help"}}
		case "broker":
			helps = [][]string{{"broker", "audit", "--help"}}
		case "platform":
			helps = [][]string{{"platform", "info", "--help"}}
		case "policy":
			helps = [][]string{{"policy", "new", "--help"}}
		case "collateral":
			helps = [][]string{{"collateral", "fetch", "--help"}}
		case "cache":
			helps = [][]string{{"cache", "info", "--help"}}
		case "sealed":
			helps = [][]string{{"sealed", "export", "--help"}}
		default:
			helps = [][]string{{c.Name, "--help"}}
		}
		for _, h := range helps {
			name := strings.Join(h[:len(h)-1], " ")
			r := launch(t, h...)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage: launch "+c.Name) {
				t.Errorf("%s --help: %+v", name, r)
			}
			if _, ok := cases[name]; jsonFlag.MatchString(r.stdout) != ok {
				t.Errorf("%s: takes --json %v, but is run here %v", name, !ok, ok)
			}
		}
	}
}

// auditedBroker makes a broker database at db whose audit trail holds a
// refused decision in full and, beyond its budget, an aggregate of them.
func auditedBroker(t *testing.T, db string) string {
	t.Helper()
	s, err := broker.Open(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Budget = broker.AuditBudget{Burst: 1, PerSecond: 0, MaxBytes: 1 << 20, Retention: time.Hour}
	m := strings.Repeat("ab", 48)
	p, err := attest.ParsePolicy([]byte("measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"tdx\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.SetPolicy(p)
	srv := httptest.NewServer(s.Handler())
	c := &broker.Client{URL: srv.URL, Key: s.PublicKey()}
	key, _ := ecdh.P256().GenerateKey(rand.Reader)
	env := &tee.Envelope{Version: tee.EnvelopeVersion, Kind: tdx.Kind, Evidence: []byte("not a quote"), Measurement: m, Profile: "staging",
		RuntimeKey: key.PublicKey().Bytes(), Nonce: []byte("a nonce of the host's own"), Issued: time.Now().UTC()}
	for range 3 {
		if _, err := c.Release(context.Background(), env, key, []string{broker.SealingKey}); err == nil {
			t.Fatal("released to a forged nonce")
		}
	}
	srv.Close()
	s.Close()
	return db
}

// TestLogJSONRecordsTheEnd: with --log-json every line a run writes to
// its streams, under debug and staging, is a JSON record: the runtime's
// own, launch's warnings, and its final error with the code, name and
// hint (under staging the code and ref alone, or in full for the host's
// own mistake), each key but hclog's own (@level, @message, @module,
// @timestamp) snake_case.
func TestLogJSONRecordsTheEnd(t *testing.T) {
	crash := testwasm.Example(t, "crash")
	hello := testwasm.Example(t, "hello")
	type rec = map[string]any
	for _, tc := range []struct {
		name string
		args []string
		want rec // the final error's fields
		not  []string
	}{
		{"debug limit", []string{"run", cacheFlag(t), "--log-json", "-v", crash, "--", "oom"},
			rec{"code": "E4001", "name": "memory-limit", "@message": "memory limit 64 MiB reached: the workload reached its memory limit", "hint": "raise limits.memory in ampoule.toml"}, nil},
		{"debug usage", []string{"run", "--log-json", filepath.Join(t.TempDir(), "missing")},
			rec{"code": "E1002", "name": "bundle-not-found", "hint": "pass a bundle directory, a .tar bundle or (debug only) a .wasm module"}, nil},
		{"bad flag value", []string{"run", "--log-json", "--env", "=x", hello},
			rec{"code": "E1001", "name": "usage", "@message": `--env "=x" is not K=V or NAME`}, nil},
		{"staging workload", []string{"run", "--log-json", "--profile", "staging", crash},
			rec{"code": "E2002", "name": "workload-exit"}, []string{"hint", "status"}},
		{"staging host", []string{"run", "--log-json", "--profile", "staging", "--env", "X=1", hello},
			rec{"code": "E3003", "name": "host-override-refused", "hint": "put the mount, variable or argument in ampoule.toml"}, nil},
	} {
		r := launchSynced(t, tc.args...)
		if r.code == 0 {
			t.Errorf("%s: exit 0", tc.name)
			continue
		}
		var last rec
		n := 0
		for _, stream := range []string{r.stdout, r.stderr} {
			for _, l := range strings.Split(strings.TrimSpace(stream), "\n") {
				if l == "" || strings.HasPrefix(l, "crash: ") { // the workload's own output, under debug
					continue
				}
				var v rec
				if err := json.Unmarshal([]byte(l), &v); err != nil {
					t.Errorf("%s: a line not JSON: %q", tc.name, l)
					continue
				}
				n++
				for k := range v {
					if !snakeCase.MatchString(strings.TrimPrefix(k, "@")) {
						t.Errorf("%s: key %q", tc.name, k)
					}
				}
				if v["@level"] == "error" && v["@module"] == "launch" {
					last = v
				}
			}
		}
		if last == nil {
			t.Errorf("%s: no final error record in %+v", tc.name, r)
			continue
		}
		for k, want := range tc.want {
			if last[k] != want {
				t.Errorf("%s: %s is %v, want %v", tc.name, k, last[k], want)
			}
		}
		for _, k := range tc.not {
			if _, ok := last[k]; ok {
				t.Errorf("%s: the record has %s: %v", tc.name, k, last)
			}
		}
		if strings.Contains(r.stdout+r.stderr, "launch: error") || strings.Contains(r.stdout+r.stderr, "launch: hint") {
			t.Errorf("%s: text lines beside the records: %+v", tc.name, r)
		}
		if m, _ := last["@message"].(string); strings.Contains(tc.name, "staging") && !bytes.Contains([]byte(m), []byte("(ref ")) {
			t.Errorf("%s: no ref in %q", tc.name, m)
		}
	}
}
