package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/tdx"
)

func keygenCommand() command {
	return command{
		name:    "keygen",
		summary: "make a tenant's log key pair",
		usage:   "keygen [-o IDENTITY]",
		help: `
Keygen makes a log identity (private key) for a tenant. With -o it writes
the identity to the file (mode 0600, never overwriting) and prints the
recipient (public key) to put in the manifest as log_recipient; without
-o it prints the whole identity file to stdout.

Example:
  launch keygen -o tenant.key
  # then, in ampoule.toml: log_recipient = "alog1..."`,
		run: doKeygen,
	}
}

func doKeygen(ctx context.Context, e *cliEnv, args []string) int {
	c := keygenCommand()
	fs := e.newFlagSet(c)
	out := fs.String("o", "", "write the identity to this file")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
	id, err := logging.GenerateIdentity()
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "generating a key: %v", err))
	}
	file, err := id.Marshal(time.Now())
	if err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "%v", err))
	}
	if *out == "" {
		e.stdout.Write(file)
		return 0
	}
	if err := writeNew(*out, file, 0o600, "keygen never overwrites a key; choose another file"); err != nil {
		return e.fail(err)
	}
	fmt.Fprintln(e.stdout, id.Recipient())
	return 0
}

func logsCommand() command {
	return command{
		name:    "logs",
		summary: "decrypt and verify a run's log",
		usage:   "logs decrypt --identity IDENTITY [--policy POLICY.toml] [--nonce HEX] [--ref REF] [--tdx-collateral FILE] [--json] [--follow] [LOG|-]",
		help: `
Logs decrypt opens a log written under staging or production with the
tenant's identity and prints its records in order: the workload's stdout
to stdout, its stderr and the runtime's records to stderr (or every record
as a JSON line with --json).

Before any record it checks who wrote the log: the header carries the
run's evidence envelope and is signed with the runtime key made for the
run inside its TEE, which the evidence's report data binds with the
measurement and a nonce; the end record is signed too. A log not signed by
the key its evidence binds, or whose evidence does not bind the header's
measurement and profile, is refused (E1026). With --policy the evidence
itself is judged as 'launch verify' judges it, at the time the log began
(with --tdx-collateral for a TDX quote's TCB status), and a contraindicated
verdict refuses the log (E3008); a warning, such as hardware evidence
without --nonce, is shown with the log's records; without --policy
the evidence is only checked to be genuine evidence of its kind, which
any TEE or anyone with a simulator key can make for a key of their own,
and it says so. --ref (the reference the host showed for the run) and
--nonce (the nonce the tenant's broker issued to the run) refuse another
run's log (E1027), such as an older one the host hands over instead.
Under the simulator anyone on the host can forge a log, and it says so.

It fails, with a registered code, on the first record that was dropped,
repeated, reordered, spliced from another run or altered, on a wrong
identity, and on a log without its end record; what it printed before the
failure is genuine. --follow waits for a live log to grow until its end
record. Logs of version 1, which carried no signature, are refused.

Examples:
  launch logs decrypt --identity tenant.key --policy policy.toml --ref 3c1f... run.log
  launch run --profile staging --log-out - bundle 2>&1 >/dev/null | launch logs decrypt --identity tenant.key -`,
		run: doLogs,
	}
}

func doLogs(ctx context.Context, e *cliEnv, args []string) int {
	c := logsCommand()
	args, done, code := e.subcommand(c, args, "decrypt")
	if done {
		return code
	}
	fs := e.newFlagSet(c)
	identity := fs.String("identity", "", "the tenant's identity file (from 'launch keygen')")
	asJSON := fs.Bool("json", false, "print each record as a JSON line")
	follow := fs.Bool("follow", false, "wait for a live log to grow, until its end record")
	policyFile := fs.String("policy", "", "judge the log's evidence against this policy (TOML), as 'launch verify' does")
	nonceHex := fs.String("nonce", "", "the nonce the run's evidence must carry, in hex (the one the tenant's broker issued)")
	wantRef := fs.String("ref", "", "the reference the host showed for the run: the log must be that run's")
	tdxCollateral := fs.String("tdx-collateral", "", "with --policy: Intel's collateral for a TDX run's quote ('launch collateral fetch')")
	pos, rest, err := e.parse(c, fs, args)
	if err == errHelp {
		return 0
	}
	if err != nil {
		return e.fail(err)
	}
	if *identity == "" || len(pos) > 1 || len(rest) > 0 {
		return e.fail(errcode.Errorf(errcode.Usage, "logs decrypt needs --identity and at most one LOG").WithHint("usage: launch " + c.usage))
	}
	var pol *attest.Policy
	if *policyFile != "" {
		if pol, err = readPolicy(*policyFile); err != nil {
			return e.fail(err)
		}
	}
	var coll *tdx.Collateral
	if *tdxCollateral != "" {
		if coll, err = readCollateral(*tdxCollateral); err != nil {
			return e.fail(err)
		}
	}
	var nonce []byte
	if *nonceHex != "" {
		if nonce, err = hex.DecodeString(*nonceHex); err != nil || len(nonce) == 0 {
			return e.fail(errcode.Errorf(errcode.Usage, "--nonce is not hex"))
		}
	}
	idData, err := os.ReadFile(*identity)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.IdentityInvalid, "%v", err))
	}
	id, err := logging.ParseIdentity(idData)
	if err != nil {
		return e.fail(errcode.Errorf(errcode.IdentityInvalid, "%s: %v", *identity, err))
	}
	var in io.Reader = e.stdin
	if len(pos) == 1 && pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return e.fail(errcode.Errorf(errcode.Usage, "%v", err))
		}
		defer f.Close()
		in = f
	}
	if *follow {
		in = &followReader{ctx: ctx, r: in}
	}
	r, err := logging.NewReader(in, id)
	if err != nil {
		return e.fail(logError(err))
	}
	bound, err := checkBinding(r.Header(), pol, attest.Options{Nonce: nonce, TDXCollateral: coll}, *wantRef)
	if err != nil {
		return e.fail(err)
	}
	enc := json.NewEncoder(e.stdout)
	n := 0
	for {
		rec, err := r.Next()
		if err == io.EOF {
			if !*follow {
				if _, err := r.Next(); err != io.EOF {
					return e.fail(logError(err))
				}
			}
			break
		}
		if err != nil {
			return e.fail(logError(err))
		}
		n++
		if *asJSON {
			enc.Encode(struct {
				Seq     uint64    `json:"seq"`
				Time    time.Time `json:"time"`
				Level   string    `json:"level"`
				Source  string    `json:"source"`
				Message string    `json:"message"`
			}{rec.Seq, rec.Time, rec.Level.String(), rec.Source.String(), string(rec.Message)})
			continue
		}
		switch rec.Source {
		case logging.SourceStdout:
			e.stdout.Write(rec.Message)
		case logging.SourceStderr:
			e.stderr.Write(rec.Message)
		default:
			msg := strings.TrimSuffix(string(rec.Message), "\n")
			fmt.Fprintf(e.stderr, "%s [runtime %s] %s\n", rec.Time.Format(time.RFC3339Nano), rec.Level, msg)
		}
	}
	h := r.Header()
	what := "log verified"
	switch {
	case pol == nil:
		what = "log intact, evidence not judged"
	case bound.verdict != attest.Affirming:
		what = "log verified, with warnings"
	}
	fmt.Fprintf(e.stderr, "launch: %s: ref %s, profile %s, %d records, %d dropped, measurement %s\n", what, h.Ref, h.Profile, n, r.Dropped, h.Measurement)
	fmt.Fprintf(e.stderr, "launch: bound to %s\n", bound.describe())
	for _, w := range bound.warnings {
		fmt.Fprintf(e.stderr, "launch: warning: %s\n", w)
	}
	return 0
}

// binding is what a log's header was found bound to.
type binding struct {
	env      *tee.Envelope
	key      [32]byte // SHA-256 of the runtime key
	verdict  attest.Status
	warnings []string
}

func (b *binding) describe() string {
	verdict := "not judged (no --policy)"
	if b.verdict != "" {
		verdict = string(b.verdict) + " under the policy"
	}
	return fmt.Sprintf("%s evidence issued %s, nonce %x, runtime key sha256:%x; %s",
		b.env.Kind, b.env.Issued.Format(time.RFC3339), b.env.Nonce, b.key[:8], verdict)
}

// checkBinding checks that a log's header, whose signature by its runtime
// key the reader has checked, is bound by the run's evidence: the envelope
// binds that key, the header's measurement and profile, and (when given)
// the nonce; the header is the run of ref (when given); and the evidence
// is genuine, or with a policy not contraindicated by it. It is judged at
// the time the header says the log began, which the runtime key signed.
//
// A policy's warning is shown, not refused: the one Verify gives is that
// hardware evidence without the verifier's nonce may be old, and a log's
// evidence cannot be older than the runtime key made for its run; what
// stands against an older log is --ref or --nonce, and without either
// the tenant is told so.
func checkBinding(h logging.Header, pol *attest.Policy, opts attest.Options, ref string) (*binding, error) {
	nonce := opts.Nonce
	env, err := tee.DecodeEnvelope(h.Envelope)
	if err != nil {
		return nil, errcode.Errorf(errcode.LogUnbound, "the log's evidence: %v", err)
	}
	b := &binding{env: env, key: sha256.Sum256(h.RuntimeKey)}
	switch {
	case !bytes.Equal(env.RuntimeKey, h.RuntimeKey):
		return nil, errcode.Errorf(errcode.LogUnbound, "the log is signed by runtime key sha256:%x, and its evidence binds another", b.key[:8])
	case env.Measurement != h.Measurement || env.Profile != h.Profile:
		return nil, errcode.Errorf(errcode.LogUnbound, "the log says measurement %s, profile %s; its evidence binds measurement %s, profile %s", h.Measurement, h.Profile, env.Measurement, env.Profile)
	case ref != "" && h.Ref != ref:
		return nil, errcode.Errorf(errcode.LogOtherRun, "the log is of ref %s, not %s", h.Ref, ref)
	case nonce != nil && !bytes.Equal(env.Nonce, nonce):
		return nil, errcode.Errorf(errcode.LogOtherRun, "the log's evidence carries nonce %x, not %x", env.Nonce, nonce)
	}
	opts.Now = h.Started
	if pol == nil {
		res := attest.Authentic(env, opts)
		if res.Status == attest.Contraindicated {
			return nil, errcode.Errorf(errcode.LogUnbound, "the log's evidence is not genuine %s evidence binding its runtime key: %s", env.Kind, strings.Join(res.Reasons, "; "))
		}
		b.warnings = append(b.warnings, "the evidence was not judged (no --policy): any TEE, whatever it runs, or anyone with a simulator key could have made it and written this log")
	} else {
		res := attest.Verify(env, pol, opts)
		if res.Status == attest.Contraindicated {
			return nil, errcode.Errorf(errcode.EvidenceRefused, "the log's evidence: %s: %s", res.Status, strings.Join(res.Reasons, "; "))
		}
		b.verdict = res.Status
		if res.Status == attest.Warning {
			b.warnings = append(b.warnings, res.Reasons...)
		}
	}
	if ref == "" && nonce == nil {
		b.warnings = append(b.warnings, "nothing shows this is the log of the run you mean rather than an older one of the same bundle: give --ref (the reference the host showed) or --nonce")
	}
	if env.Kind == sim.Kind || env.Insecure {
		b.warnings = append(b.warnings, "the evidence is the insecure simulator's, whose key is on the host: anyone there can forge this log")
	}
	return b, nil
}

// logError maps a reader's error to its registered code.
func logError(err error) error {
	switch {
	case errors.Is(err, logging.ErrUnsigned):
		return errcode.Wrap(errcode.LogUnbound, err)
	case errors.Is(err, logging.ErrWrongIdentity):
		return errcode.Wrap(errcode.LogWrongIdentity, err)
	case errors.Is(err, logging.ErrTampered):
		return errcode.Wrap(errcode.LogTampered, err)
	case errors.Is(err, logging.ErrTruncated):
		return errcode.Wrap(errcode.LogTruncated, err)
	case errors.Is(err, logging.ErrFormat):
		return errcode.Wrap(errcode.LogMalformed, err)
	}
	return errcode.Wrap(errcode.LogMalformed, err)
}

// followReader turns EOF into a wait for more, as tail -f does, until the
// context ends.
type followReader struct {
	ctx context.Context
	r   io.Reader
}

func (f *followReader) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		if n > 0 || err != io.EOF {
			return n, err
		}
		select {
		case <-f.ctx.Done():
			return 0, io.EOF
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// openSink opens where a run's log goes: "-" (or empty) for stderr,
// "unix:PATH" for a Unix socket, anything else a new file (mode 0600).
func openSink(spec string, stderr io.Writer) (io.WriteCloser, error) {
	switch {
	case spec == "" || spec == "-":
		return nopCloser{stderr}, nil
	case strings.HasPrefix(spec, "unix:"):
		conn, err := net.Dial("unix", strings.TrimPrefix(spec, "unix:"))
		if err != nil {
			return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
		}
		return conn, nil
	default:
		f, err := os.OpenFile(spec, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
		}
		return f, nil
	}
}

// nopCloser is a writer the log does not close: stderr.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
