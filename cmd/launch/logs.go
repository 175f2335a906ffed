package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
)

func keygenCommand() command {
	return command{
		name:    "keygen",
		summary: "make a tenant's log key pair",
		usage:   "keygen [-o IDENTITY] | keygen -y IDENTITY",
		help: `
Keygen makes a log identity (private key) for a tenant. With -o it writes
the identity to the file (mode 0600, never overwriting) and prints the
recipient (public key) to put in the manifest as log_recipient; without
-o it prints the whole identity file to stdout. With -y it makes nothing
and prints the recipient of an existing identity file (- for stdin).

Examples:
  launch keygen -o tenant.key
  # then, in ampoule.toml: log_recipient = "alog1..."
  launch keygen -y tenant.key`,
		run: doKeygen,
	}
}

func doKeygen(ctx context.Context, e *cliEnv, args []string) int {
	c := keygenCommand()
	fs := e.newFlagSet(c)
	out := fs.String("o", "", "write the identity to this file")
	recipientOf := fs.String("y", "", "print the recipient of this identity file (- for stdin), making nothing")
	if done, code := e.parseNoArgs(c, fs, args); done {
		return code
	}
	if *recipientOf != "" {
		if *out != "" {
			return e.fail(errcode.Errorf(errcode.Usage, "keygen takes -o or -y, not both").WithHint("usage: launch " + c.usage))
		}
		return e.printRecipient(*recipientOf)
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
		usage:   "logs decrypt --identity IDENTITY [--policy POLICY.toml] [--nonce HEX] [--ref REF] [--tdx-collateral FILE] [--envelope-out FILE] [--json] [--follow] [LOG|-]",
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
--envelope-out FILE writes the run's evidence envelope the log carries to a
new file, as 'launch attest' prints one, for 'launch verify' or a broker,
once the whole log is verified.

It fails, with a registered code, on the first record that was dropped,
repeated, reordered, spliced from another run or altered, on a wrong
identity, and on a log without its end record; what it printed before the
failure is genuine. --follow waits for a live log to grow until its end
record. Logs of version 1, which carried no signature, are refused.

Examples:
  launch logs decrypt --identity tenant.key --policy policy.toml --ref 3c1f... run.log
  launch logs decrypt --identity tenant.key --envelope-out evidence.json run.log
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
	e.quietFlag(fs)
	envelopeOut := fs.String("envelope-out", "", "write the run's evidence envelope to this new file, as 'launch attest' prints it, once the log is verified")
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
	check, err := logCheck(*policyFile, *tdxCollateral, *nonceHex, *wantRef)
	if err != nil {
		return e.fail(err)
	}
	id, err := readIdentity(*identity)
	if err != nil {
		return e.fail(err)
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
	r, err := ampoule.OpenLog(in, id, check)
	if err != nil {
		return e.fail(err)
	}
	n, err := printRecords(e, r, *asJSON, *follow)
	if err != nil {
		return e.fail(err)
	}
	if *envelopeOut != "" {
		if err := writeEnvelope(*envelopeOut, r.Binding.Envelope); err != nil {
			return e.fail(err)
		}
	}
	printLogSummary(e, r, check, n)
	return 0
}

// printLogSummary says what the log was found bound to, and its warnings.
func printLogSummary(e *cliEnv, r *ampoule.LogReader, check ampoule.LogCheck, n int) {
	h := r.Header()
	what := "log verified"
	switch {
	case check.Policy == nil:
		what = "log intact, evidence not judged"
	case r.Binding.Verdict != attest.Affirming:
		what = "log verified, with warnings"
	}
	fmt.Fprintf(e.info(e.stderr), "launch: %s: ref %s, profile %s, %d records, %d dropped, measurement %s\n", what, h.Ref, h.Profile, n, r.Dropped(), h.Measurement)
	fmt.Fprintf(e.info(e.stderr), "launch: bound to %s\n", r.Binding)
	for _, w := range r.Binding.Warnings {
		fmt.Fprintf(e.stderr, "launch: warning: %s\n", w)
	}
}

// writeEnvelope writes a log's evidence envelope to a new file, as
// 'launch attest' prints one.
func writeEnvelope(path string, env *tee.Envelope) error {
	data, err := env.Encode()
	if err != nil {
		return errcode.Errorf(errcode.Internal, "%v", err)
	}
	return writeNew(path, append(data, '\n'), 0o644, "--envelope-out never overwrites a file; choose another")
}

// printRecipient prints the recipient of the identity in file ("-":
// stdin).
func (e *cliEnv) printRecipient(file string) int {
	var id *logging.Identity
	var err error
	if file == "-" {
		id, err = parseIdentity(io.LimitReader(e.stdin, 1<<16), "stdin")
	} else {
		id, err = readIdentity(file)
	}
	if err != nil {
		return e.fail(err)
	}
	fmt.Fprintln(e.stdout, id.Recipient())
	return 0
}

// parseIdentity reads an identity from r, named name in errors.
func parseIdentity(r io.Reader, name string) (*logging.Identity, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, errcode.Errorf(errcode.IdentityInvalid, "%s: %v", name, err)
	}
	id, err := logging.ParseIdentity(data)
	if err != nil {
		return nil, errcode.Errorf(errcode.IdentityInvalid, "%s: %v", name, err)
	}
	return id, nil
}

// readIdentity reads the tenant's identity file.
func readIdentity(path string) (*logging.Identity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errcode.Errorf(errcode.IdentityInvalid, "%v", err)
	}
	id, err := logging.ParseIdentity(data)
	if err != nil {
		return nil, errcode.Errorf(errcode.IdentityInvalid, "%s: %v", path, err)
	}
	return id, nil
}

// logCheck is what logs decrypt's flags ask of a log.
func logCheck(policyFile, collateralFile, nonceHex, ref string) (ampoule.LogCheck, error) {
	check := ampoule.LogCheck{Ref: ref}
	var err error
	if policyFile != "" {
		if check.Policy, err = readPolicy(policyFile); err != nil {
			return check, err
		}
	}
	if collateralFile != "" {
		if check.TDXCollateral, err = readCollateral(collateralFile); err != nil {
			return check, err
		}
	}
	if nonceHex != "" {
		if check.Nonce, err = hex.DecodeString(nonceHex); err != nil || len(check.Nonce) == 0 {
			return check, errcode.Errorf(errcode.Usage, "--nonce is not hex")
		}
	}
	return check, nil
}

// printRecords prints a log's records, the workload's stdout to stdout,
// the rest to stderr, or each as a JSON line; it returns how many.
func printRecords(e *cliEnv, r *ampoule.LogReader, asJSON, follow bool) (int, error) {
	enc := json.NewEncoder(e.stdout)
	n := 0
	for {
		rec, err := r.Next()
		if err == io.EOF {
			if !follow {
				// Nothing may follow the end record.
				if _, err := r.Next(); err == nil {
					return n, errcode.Errorf(errcode.LogMalformed, "the log goes on after its end record")
				} else if err != io.EOF {
					return n, err
				}
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
		switch {
		case asJSON:
			enc.Encode(struct {
				Seq     uint64    `json:"seq"`
				Time    time.Time `json:"time"`
				Level   string    `json:"level"`
				Source  string    `json:"source"`
				Message string    `json:"message"`
			}{rec.Seq, rec.Time, rec.Level.String(), rec.Source.String(), string(rec.Message)})
		case rec.Source == logging.SourceStdout:
			e.stdout.Write(rec.Message)
		case rec.Source == logging.SourceStderr:
			e.stderr.Write(rec.Message)
		default:
			msg := strings.TrimSuffix(string(rec.Message), "\n")
			fmt.Fprintf(e.stderr, "%s [runtime %s] %s\n", rec.Time.Format(time.RFC3339Nano), rec.Level, msg)
		}
	}
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
