package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	snptestdata "github.com/google/go-sev-guest/verify/testdata"
	tdxtestdata "github.com/google/go-tdx-guest/testing/testdata"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
)

const canary = "CANARY-d1c3"

// leaked says whether b holds the canary or either half of it. The halves
// are ones hex cannot make: a bare "d1c3" also turns up by chance in the
// references and digests the host is shown.
func leaked(b []byte) bool {
	return bytes.Contains(b, []byte("CANARY")) || bytes.Contains(b, []byte("-d1c3"))
}

// tenant makes an identity file and returns its path and recipient.
func tenant(t *testing.T) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tenant.key")
	r := launch(t, "keygen", "-o", path)
	if r.code != 0 || !strings.HasPrefix(r.stdout, logging.RecipientPrefix) {
		t.Fatalf("keygen: %+v", r)
	}
	return path, strings.TrimSpace(r.stdout)
}

func TestKeygen(t *testing.T) {
	path, recipient := tenant(t)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("identity file: %v, mode %v", err, st.Mode())
	}
	data, _ := os.ReadFile(path)
	id, err := logging.ParseIdentity(data)
	if err != nil || id.Recipient().String() != recipient {
		t.Errorf("the file's identity does not match the printed recipient: %v", err)
	}
	if r := launch(t, "keygen", "-o", path); r.code != errcode.ClassUsage.ExitStatus() {
		t.Errorf("keygen overwrote a key: %+v", r)
	}
	if r := launch(t, "keygen"); r.code != 0 || !strings.Contains(r.stdout, logging.IdentityPrefix) {
		t.Errorf("keygen to stdout: %+v", r)
	}
}

// leakBundle is the leak example with the tenant's recipient and the mode.
// Its wall time, 2 m, is generous: it also bounds compiling the module,
// which each staging run does afresh (10-30 s on a loaded machine), and no
// mode runs for long; the test is about where output goes, not time.
func leakBundle(t *testing.T, recipient, mode string) string {
	t.Helper()
	src := testwasm.Example(t, "leak")
	return copyBundle(t, src, "name = \"leak\"\nargs = [\""+mode+"\", \""+canary+"-arg\"]\nprofiles = [\"debug\", \"staging\"]\nlog_recipient = \""+recipient+"\"\n"+
		"[env]\nSECRET = \""+canary+"\"\n[limits]\nmemory = \"64MiB\"\nwall_time = \"2m\"\noutput = \"256KiB\"\n")
}

// TestLeak pushes a canary out of a workload every way it can. Under staging
// it must appear nowhere the host can see (launch's stdout and stderr, its
// exit status, the log's bytes, temporary files), and the tenant's identity
// must recover it from the log. Under debug it is plainly visible: the test
// proves the channel works both ways.
func TestLeak(t *testing.T) {
	bin := testwasm.Launch(t)
	key, recipient := tenant(t)
	for _, tc := range []struct {
		mode string
		code errcode.Code
	}{
		{"stdout", 0},
		{"stderr", 0},
		{"panic", errcode.WorkloadExit},
		{"trap", errcode.WorkloadTrap},
		{"exit", errcode.WorkloadExit},
		{"path", 0},
		{"flood", errcode.OutputLimit},
		{"all", errcode.WorkloadExit},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			bundle := leakBundle(t, recipient, tc.mode)
			tmp, cache := t.TempDir(), t.TempDir()
			logFile := filepath.Join(t.TempDir(), "run.log")
			cmd := exec.Command(bin, "run", "--profile", "staging", "--log-out", logFile, bundle)
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "XDG_CACHE_HOME="+cache, "XDG_CONFIG_HOME="+t.TempDir())
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			status := cmd.ProcessState.ExitCode()
			logBytes, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			for what, b := range map[string][]byte{"stdout": stdout.Bytes(), "stderr": stderr.Bytes(), "log": logBytes} {
				if leaked(b) {
					t.Errorf("the canary reached the host's %s", what)
				}
			}
			want := 0
			if tc.code != 0 {
				want = tc.code.Class().ExitStatus()
			}
			if status != want {
				t.Errorf("exit status %d, want %d", status, want)
			}
			if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
				t.Errorf("temporary files left: %v", entries)
			}
			checkStagingCache(t, cache)
			lines := hostVisible(stderr.String())
			if tc.code != 0 && (len(lines) != 1 || !strings.HasPrefix(lines[0], "launch: "+tc.code.String()+" (ref ")) {
				t.Errorf("stderr = %q, want one static line with %v", stderr.String(), tc.code)
			}

			// The tenant reads it all back.
			var dout, derr bytes.Buffer
			code := run(t.Context(), []string{"logs", "decrypt", "--identity", key, logFile}, strings.NewReader(""), &dout, &derr)
			if code != 0 {
				t.Fatalf("decrypt: %d %s", code, derr.String())
			}
			all := dout.String() + derr.String()
			if tc.mode != "exit" && !strings.Contains(all, canary) {
				t.Errorf("the tenant's log lacks the canary:\n%s", all)
			}
			if !strings.Contains(all, canary+"-arg") {
				t.Error("the tenant's log lacks the argument echo")
			}
			if tc.code != 0 && !strings.Contains(all, tc.code.String()) {
				t.Errorf("the tenant's log lacks the error's detail (%v):\n%s", tc.code, derr.String())
			}
			ref := strings.TrimSuffix(strings.SplitAfter(strings.Join(lines, ""), "(ref ")[len(strings.SplitAfter(strings.Join(lines, ""), "(ref "))-1], ")")
			if tc.code != 0 && !strings.Contains(derr.String(), "ref "+ref) {
				t.Errorf("the log is not under the reference the host saw (%s)", ref)
			}

			// Under debug the same workload shows everything.
			d := exec.Command(bin, "run", "--profile", "debug", cacheFlag(t), bundle)
			var dbgOut, dbgErr bytes.Buffer
			d.Stdout, d.Stderr = &dbgOut, &dbgErr
			d.Run()
			if tc.mode != "exit" && !strings.Contains(dbgOut.String()+dbgErr.String(), canary) {
				t.Error("under debug the canary is not visible")
			}
		})
	}
}

// stagingCode is the only file a staging run may leave in the host's
// cache directory: the authenticated compilation cache's disk tier
// (package codecache), written when the module was in no memory tier yet.
// Whether it is written depends on /dev/shm, which every run on the
// machine shares, so a test can count on neither its presence nor its
// absence.
var stagingCode = regexp.MustCompile(`^ampoule/code/[0-9a-f]{32}\.code$`)

// checkStagingCache fails if a staging run left in cache anything but the
// authenticated cache's entries, or an entry holding the canary.
func checkStagingCache(t *testing.T, cache string) {
	t.Helper()
	filepath.WalkDir(cache, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			t.Errorf("the cache directory: %v", err)
			return nil
		}
		rel, _ := filepath.Rel(cache, path)
		switch {
		case d.IsDir() && (rel == "." || rel == "ampoule" || rel == "ampoule/code"):
		case d.Type().IsRegular() && stagingCode.MatchString(rel):
			if b, err := os.ReadFile(path); err != nil || bytes.Contains(b, []byte(canary)) || bytes.Contains(b, []byte("d1c3")) {
				t.Errorf("the cache entry %s holds the canary (or cannot be read: %v)", rel, err)
			}
		default:
			t.Errorf("the cache directory was written: %s", rel)
		}
		return nil
	})
}

func TestLogsDecryptRefusesTampering(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // the simulator's key
	key, recipient := tenant(t)
	logFile := filepath.Join(t.TempDir(), "run.log")
	if r := launch(t, "run", "--profile", "staging", "--log-out", logFile, leakBundle(t, recipient, "stdout")); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	good, _ := os.ReadFile(logFile)
	ls := strings.SplitAfter(string(good), "\n")
	ls = ls[:len(ls)-1]
	otherKey, _ := tenant(t)
	write := func(s string) string {
		p := filepath.Join(t.TempDir(), "x.log")
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	for _, tc := range []struct {
		name, file, key string
		code            errcode.Code
	}{
		{"whole", logFile, key, 0},
		{"dropped record", write(ls[0] + strings.Join(ls[2:], "")), key, errcode.LogTampered},
		{"swapped records", write(ls[0] + ls[2] + ls[1] + strings.Join(ls[3:], "")), key, errcode.LogTampered},
		{"no end", write(strings.Join(ls[:len(ls)-1], "")), key, errcode.LogTruncated},
		{"wrong identity", logFile, otherKey, errcode.LogWrongIdentity},
		{"not a log", write("hello\n"), key, errcode.LogMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := launch(t, "logs", "decrypt", "--identity", tc.key, tc.file)
			if tc.code == 0 {
				if r.code != 0 || !strings.Contains(r.stderr, "launch: log intact, evidence not judged") || strings.Contains(r.stderr, "log verified") {
					t.Errorf("%+v", r)
				}
				return
			}
			if r.code != tc.code.Class().ExitStatus() || !strings.Contains(r.stderr, tc.code.String()) {
				t.Errorf("%+v, want %v", r, tc.code)
			}
		})
	}
	if r := launch(t, "logs", "decrypt", "--identity", filepath.Join(t.TempDir(), "none"), logFile); !strings.Contains(r.stderr, errcode.IdentityInvalid.String()) {
		t.Errorf("missing identity: %+v", r)
	}
}

// TestLogToSocketAndFollow sends a run's log to a Unix socket and decrypts a
// live log with --follow.
func TestLogToSocketAndFollow(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // the simulator's key
	key, recipient := tenant(t)
	sock := filepath.Join(t.TempDir(), "log.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		got <- b
	}()
	if r := launch(t, "run", "--profile", "staging", "--log-out", "unix:"+sock, leakBundle(t, recipient, "stdout")); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	logBytes := <-got
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"logs", "decrypt", "--identity", key, "-"}, bytes.NewReader(logBytes), &out, &errb); code != 0 || !strings.Contains(out.String(), canary) {
		t.Fatalf("decrypting the socket's log: %d %s %s", code, out.String(), errb.String())
	}

	// --follow: the log grows while it is read.
	live := filepath.Join(t.TempDir(), "live.log")
	half := len(logBytes) / 2
	os.WriteFile(live, logBytes[:half], 0o644)
	done := make(chan int, 1)
	var fout, ferr bytes.Buffer
	go func() {
		done <- run(t.Context(), []string{"logs", "decrypt", "--follow", "--identity", key, live}, strings.NewReader(""), &fout, &ferr)
	}()
	time.Sleep(300 * time.Millisecond)
	f, _ := os.OpenFile(live, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(logBytes[half:])
	f.Close()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(fout.String(), canary) {
			t.Errorf("--follow: %d %q %q", code, fout.String(), ferr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--follow did not finish once the end record arrived")
	}
}

// TestAttestVerify runs the whole path on the simulator: policy new, attest,
// verify; then refusals for a wrong nonce, an altered envelope, a policy
// without allow_insecure, and production with no TEE.
func TestAttestVerify(t *testing.T) {
	hello := testwasm.Example(t, "hello")
	dir := t.TempDir()
	key := filepath.Join(dir, "sim.key")
	nonce := "00112233445566778899aabbccddeeff"
	a := launch(t, "attest", "--sim-key", key, "--nonce", nonce, "--profile", "staging", hello)
	if a.code != 0 || !strings.Contains(a.stderr, "insecure") {
		t.Fatalf("attest: %+v", a)
	}
	evidence := filepath.Join(dir, "evidence.json")
	os.WriteFile(evidence, []byte(a.stdout), 0o644)
	p := launch(t, "policy", "new", "--from", hello, "--profile", "staging", "--backend", "sim", "--allow-insecure", "--sim-key", key)
	if p.code != 0 {
		t.Fatalf("policy new: %+v", p)
	}
	// The policy pins this machine's simulator key, which attest and
	// platform info print.
	simKey := regexp.MustCompile(`simulator's key is ([0-9a-f]{64})`).FindStringSubmatch(a.stderr)
	if simKey == nil || !strings.Contains(p.stdout, "sim_keys = [\""+simKey[1]+"\"]") {
		t.Fatalf("attest's key %v, not pinned in the policy:\n%s", simKey, p.stdout)
	}
	if info := launch(t, "platform", "info", "--sim-key", key); info.code != 0 || !strings.Contains(info.stdout, simKey[1]) {
		t.Errorf("platform info does not show the simulator key: %+v", info)
	}
	if q := launch(t, "policy", "new", "--from", hello, "--sim-key", key); q.code != errcode.ClassUsage.ExitStatus() {
		t.Errorf("--sim-key without the simulator: %+v", q)
	}
	policy := filepath.Join(dir, "policy.toml")
	os.WriteFile(policy, []byte(p.stdout), 0o644)
	// Another machine's simulator is not this one; a policy that pins no
	// key warns, and affirms nothing.
	other := launch(t, "attest", "--sim-key", filepath.Join(dir, "other.key"), "--nonce", nonce, "--profile", "staging", hello)
	otherEvidence := filepath.Join(dir, "other.json")
	os.WriteFile(otherEvidence, []byte(other.stdout), 0o644)
	if v := launch(t, "verify", "--policy", policy, "--nonce", nonce, otherEvidence); v.code == 0 || !strings.Contains(v.stdout, "not one the policy pins") {
		t.Errorf("another machine's simulator: %+v", v)
	}
	unpinned := filepath.Join(dir, "unpinned.toml")
	os.WriteFile(unpinned, []byte(regexp.MustCompile(`(?m)^sim_keys = .*$`).ReplaceAllString(p.stdout, "")), 0o644)
	if v := launch(t, "verify", "--policy", unpinned, "--nonce", nonce, evidence); v.code == 0 || !strings.HasPrefix(v.stdout, "warning") || !strings.Contains(v.stderr, "pins no simulator key") {
		t.Errorf("a policy pinning no simulator key: %+v", v)
	}
	anyKey := filepath.Join(dir, "any.toml")
	os.WriteFile(anyKey, []byte(regexp.MustCompile(`(?m)^sim_keys = .*$`).ReplaceAllString(p.stdout, `sim_keys = "any"`)), 0o644)
	if v := launch(t, "verify", "--policy", anyKey, "--nonce", nonce, otherEvidence); v.code != 0 || strings.Contains(v.stderr, "pins no") {
		t.Errorf("sim_keys = \"any\": %+v", v)
	}
	// 'snp' is accepted as 'launch run' names it.
	if q := launch(t, "policy", "new", "--from", hello, "--backend", "snp", "--backend", "tdx"); q.code != 0 || !strings.Contains(q.stdout, `backends = ["sev-snp", "tdx"]`) {
		t.Errorf("policy new --backend snp: %+v", q)
	}

	if v := launch(t, "verify", "--policy", policy, "--nonce", nonce, evidence); v.code != 0 || !strings.HasPrefix(v.stdout, "affirming: sim evidence") {
		t.Fatalf("verify: %+v", v)
	}
	if v := launch(t, "verify", "--policy", policy, "--nonce", "ff", evidence); v.code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(v.stderr, errcode.EvidenceRefused.String()) {
		t.Errorf("wrong nonce: %+v", v)
	}
	altered := filepath.Join(dir, "altered.json")
	os.WriteFile(altered, []byte(strings.Replace(a.stdout, `"profile": "staging"`, `"profile": "production"`, 1)), 0o644)
	if v := launch(t, "verify", "--policy", policy, altered); v.code == 0 || !strings.Contains(v.stdout, "contraindicated") {
		t.Errorf("altered envelope: %+v", v)
	}
	strict := filepath.Join(dir, "strict.toml")
	os.WriteFile(strict, []byte(strings.Replace(p.stdout, "allow_insecure = true", "allow_insecure = false", 1)), 0o644)
	if v := launch(t, "verify", "--policy", strict, evidence); v.code == 0 || !strings.Contains(v.stdout, "allow_insecure") {
		t.Errorf("policy without allow_insecure: %+v", v)
	}
	if v := launch(t, "verify", "--policy", policy, policy); !strings.Contains(v.stderr, errcode.EvidenceMalformed.String()) {
		t.Errorf("a policy as evidence: %+v", v)
	}
	if v := launch(t, "verify", "--policy", evidence, evidence); !strings.Contains(v.stderr, errcode.PolicyInvalid.String()) {
		t.Errorf("evidence as a policy: %+v", v)
	}
	if r := launch(t, "run", "--profile", "production", "--backend", "auto", hello); r.code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(r.stderr, errcode.TEEUnavailable.String()) {
		t.Errorf("production on a machine without a TEE: %+v", r)
	}
	if r := launch(t, "attest", "--sim-key", key, "--nonce", nonce, "--profile", "production", "--backend", "sim", hello); !strings.Contains(r.stderr, errcode.BackendRefused.String()) {
		t.Errorf("production attest on sim: %+v", r)
	}
	if r := launch(t, "platform", "info"); r.code != 0 || !strings.Contains(r.stdout, "sev-guest") {
		t.Errorf("platform info: %+v", r)
	}
}

// TestVerifySNPByHand checks the real SEV-SNP report and VCEK that
// go-sev-guest ships, offline at a pinned time, and a tampered copy.
func TestVerifySNPByHand(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "report.bin")
	vcek := filepath.Join(dir, "vcek.der")
	os.WriteFile(report, snptestdata.AttestationBytes, 0o644)
	os.WriteFile(vcek, snptestdata.VcekBytes, 0o644)
	r := launch(t, "verify", "--snp-report", report, "--vcek", vcek, "--at", "2026-11-23T00:00:00Z")
	if r.code != 0 || !strings.Contains(r.stdout, "signature chain: valid\n") || !strings.Contains(r.stdout, "b07af9620f3b839b") || !regexp.MustCompile(`(?m)^debug allowed: +true$`).MatchString(r.stdout) {
		t.Fatalf("%+v", r)
	}
	bad := append([]byte(nil), snptestdata.AttestationBytes...)
	bad[0x90] ^= 1
	os.WriteFile(report, bad, 0o644)
	if r := launch(t, "verify", "--snp-report", report, "--vcek", vcek, "--at", "2026-11-23T00:00:00Z"); r.code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(r.stderr, errcode.EvidenceRefused.String()) {
		t.Errorf("tampered report: %+v", r)
	}
}

// TestVerifyTDXByHand checks the real TDX quote go-tdx-guest ships, at a
// time its certificates were valid, and a tampered copy.
func TestVerifyTDXByHand(t *testing.T) {
	quote := filepath.Join(t.TempDir(), "quote.dat")
	os.WriteFile(quote, tdxtestdata.RawQuote, 0o644)
	r := launch(t, "verify", "--tdx-quote", quote, "--at", "2023-07-01T01:00:00Z", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"signature_chain": "valid"`) || !strings.Contains(r.stdout, `"version": 4`) {
		t.Fatalf("%+v", r)
	}
	bad := append([]byte(nil), tdxtestdata.RawQuote...)
	bad[48+520] ^= 1
	os.WriteFile(quote, bad, 0o644)
	if r := launch(t, "verify", "--tdx-quote", quote, "--at", "2023-07-01T01:00:00Z"); !strings.Contains(r.stderr, errcode.EvidenceRefused.String()) {
		t.Errorf("tampered quote: %+v", r)
	}
}

// TestTDXCollateral fetches Intel's collateral for the real quote from a PCS
// mirror on loopback serving Intel's real answers, then judges the quote's
// TCB offline: the answers verify, and the quote's TEE TCB SVN matches no
// TCB level of that TCB info, so it is refused for that reason.
func TestTDXCollateral(t *testing.T) {
	srv, _ := tdxfake.PCSMirror(t)
	dir := t.TempDir()
	quote, coll := filepath.Join(dir, "quote.dat"), filepath.Join(dir, "collateral.json")
	os.WriteFile(quote, tdxtestdata.RawQuote, 0o644)
	if r := launch(t, "collateral", "fetch", "--tdx-quote", quote, "--pcs-url", srv.URL, "-o", coll); r.code != 0 {
		t.Fatalf("fetch: %+v", r)
	}
	r := launch(t, "verify", "--tdx-quote", quote, "--tdx-collateral", coll, "--at", "2023-07-01T01:00:00Z")
	if r.code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(r.stderr, "no matching TCB level") {
		t.Errorf("TCB judged with collateral: %+v", r)
	}
	if r := launch(t, "collateral", "fetch", "--tdx-quote", quote, "--pcs-url", srv.URL, "-o", coll); r.code != errcode.ClassUsage.ExitStatus() {
		t.Errorf("fetch overwrote a file: %+v", r)
	}
	srv.Close()
	if r := launch(t, "collateral", "fetch", "--tdx-quote", quote, "--pcs-url", srv.URL); !strings.Contains(r.stderr, "E1024") {
		t.Errorf("fetch from a closed mirror: %+v", r)
	}
	os.WriteFile(coll, []byte("{}"), 0o644)
	if r := launch(t, "verify", "--tdx-quote", quote, "--tdx-collateral", coll); !strings.Contains(r.stderr, errcode.EvidenceMalformed.String()) {
		t.Errorf("a broken collateral file: %+v", r)
	}
}

// TestRunEvidenceInLog: a staging run's log opens with the run's evidence,
// which the tenant can take out of the log and verify against a policy.
func TestRunEvidenceInLog(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	key, recipient := tenant(t)
	bundle := leakBundle(t, recipient, "stdout")
	logFile := filepath.Join(t.TempDir(), "run.log")
	if r := launch(t, "run", "--profile", "staging", "--log-json", "--log-out", logFile, bundle); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	d := launch(t, "logs", "decrypt", "--json", "--identity", key, logFile)
	if d.code != 0 {
		t.Fatalf("%+v", d)
	}
	var envelope string
	for _, line := range strings.Split(strings.TrimSpace(d.stdout), "\n") {
		var rec struct{ Source, Message string }
		json.Unmarshal([]byte(line), &rec)
		var msg map[string]string
		if rec.Source == "runtime" && json.Unmarshal([]byte(rec.Message), &msg) == nil && msg["@message"] == "evidence" {
			envelope = msg["envelope"]
		}
	}
	if envelope == "" {
		t.Fatalf("no evidence record in the log:\n%s", d.stdout)
	}
	evidence := filepath.Join(t.TempDir(), "evidence.json")
	os.WriteFile(evidence, []byte(envelope), 0o644)
	p := launch(t, "policy", "new", "--from", bundle, "--profile", "staging", "--backend", "sim", "--allow-insecure")
	policy := filepath.Join(t.TempDir(), "policy.toml")
	os.WriteFile(policy, []byte(p.stdout), 0o644)
	if v := launch(t, "verify", "--policy", policy, evidence); v.code != 0 || !strings.HasPrefix(v.stdout, "affirming") {
		t.Errorf("the run's evidence does not verify: %+v", v)
	}
}
