package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/snpfake"
	"github.com/ampoule-run/ampoule/internal/tdxfake"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

// TestTEEDebugBitRefusedUnderProduction: a run inside a TEE reads its own
// evidence before its first instruction. Where the TEE lets its host debug
// the guest (the fake SEV-SNP device's reports with guest policy DEBUG
// set, the fake TDX quotes with TD attribute DEBUG set), production
// refuses to run with E3015 and the workload never runs; staging runs with
// the fixed warning; a TEE with debugging off runs under both, without it.
// The whole run is real (the runner process, its confinement, the
// encrypted log); only the TEE device is a fake. The 2 m wall time also
// bounds each run's compile, afresh under staging and production, which a
// loaded machine can take 10-30 s over.
func TestTEEDebugBitRefusedUnderProduction(t *testing.T) {
	key, recipient := tenant(t)
	bundle := copyBundle(t, testwasm.Example(t, "leak"), "name = \"leak\"\nargs = [\"stdout\"]\nprofiles = [\"staging\", \"production\"]\nlog_recipient = \""+recipient+"\"\n"+
		"[env]\nSECRET = \""+canary+"\"\n[limits]\nmemory = \"64MiB\"\nwall_time = \"2m\"\noutput = \"256KiB\"\n")
	backends := []struct {
		name    string
		device  string
		backend func(debug bool) tee.Backend
	}{
		{"snp", tee.SEVGuestDevice, func(debug bool) tee.Backend {
			b, _, _ := snpfake.AnyBackend(t, snpfake.Options{Debug: debug})
			return b
		}},
		{"tdx", tee.TDXGuestDevice, func(debug bool) tee.Backend {
			fake := tdxfake.New(t)
			fake.Body = func(b *pb.TDQuoteBody) {
				b.TdAttributes[0] &^= 1
				if debug {
					b.TdAttributes[0] |= 1
				}
			}
			return tdx.NewBackend(fake)
		}},
	}
	// Without a log recipient too: the run still attests, and is refused.
	silent := copyBundle(t, testwasm.Example(t, "leak"), "name = \"leak\"\nargs = [\"stdout\"]\nprofiles = [\"production\"]\n")
	for _, be := range backends {
		var stderr bytes.Buffer
		env := &cliEnv{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &stderr, runner: runnerExe(t), tee: be.backend(true)}
		if code := env.run(context.Background(), []string{"run", "--profile", "production", "--backend", be.name, "--log-out", "-", silent}); code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(stderr.String(), errcode.TEEDebugRefused.String()) {
			t.Errorf("%s, production, no log recipient: exit %d, stderr %q", be.name, code, stderr.String())
		}
	}
	for _, be := range backends {
		for _, profile := range []string{"staging", "production"} {
			for _, debug := range []bool{true, false} {
				if profile == "staging" && !debug {
					continue // a TEE with debugging off runs under production, below
				}
				t.Run(be.name+"/"+profile+map[bool]string{true: "/debug", false: "/no-debug"}[debug], func(t *testing.T) {
					p, _ := profiles.Get(profile)
					var stdout, stderr bytes.Buffer
					logFile := filepath.Join(t.TempDir(), "run.log")
					env := &cliEnv{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, runner: runnerExe(t), tee: be.backend(debug)}
					code := env.run(context.Background(), []string{"run", "--profile", p.Name, "--backend", be.name, "--log-out", logFile, bundle})
					decrypted := readLogUnjudged(t, key, logFile)
					ran := strings.Contains(decrypted.stdout, "stdout: "+canary)
					warned := strings.Contains(stderr.String(), teeDebugWarning)
					refused := debug && profile == "production"
					switch {
					case refused && (code != errcode.ClassPolicy.ExitStatus() || !strings.Contains(stderr.String(), errcode.TEEDebugRefused.String()) || ran):
						t.Errorf("not refused: exit %d, ran %v, stderr %q", code, ran, stderr.String())
					case refused && strings.Contains(stderr.String(), canary):
						t.Errorf("the refusal showed the host more than its code: %q", stderr.String())
					case !refused && (code != 0 || !ran || warned != debug):
						t.Errorf("exit %d, ran %v, warned %v; stderr %q, log %q", code, ran, warned, stderr.String(), decrypted.stdout+decrypted.stderr)
					}
				})
			}
		}
	}
}

// readLogUnjudged reads a run's log with its signatures, order and end
// checked, but not its evidence: the fake devices' evidence chains to
// test-only roots that 'launch logs decrypt' rightly refuses.
func readLogUnjudged(t *testing.T, identity, file string) result {
	t.Helper()
	idData, err := os.ReadFile(identity)
	if err != nil {
		t.Fatal(err)
	}
	id, err := logging.ParseIdentity(idData)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		return result{code: 1, stderr: err.Error()}
	}
	defer f.Close()
	r, err := logging.NewReader(f, id)
	if err != nil {
		return result{code: 1, stderr: err.Error()}
	}
	var out result
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			out.code, out.stderr = 1, out.stderr+err.Error()
			return out
		}
		if rec.Source == logging.SourceStdout {
			out.stdout += string(rec.Message)
		} else {
			out.stderr += string(rec.Message)
		}
	}
}
