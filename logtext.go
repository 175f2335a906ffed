package ampoule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/logging"
)

// ReadLogCheck is what a tenant asks of a log, from its files: the policy
// its evidence is judged against and Intel's collateral for a TDX quote
// (each optional, read with its code), the nonce in hex (E1001 if not)
// and the ref the host showed.
func ReadLogCheck(policyFile, collateralFile, nonceHex, ref string) (LogCheck, error) {
	check := LogCheck{Ref: ref}
	var err error
	if policyFile != "" {
		if check.Policy, err = ReadPolicy(policyFile); err != nil {
			return check, err
		}
	}
	if collateralFile != "" {
		if check.TDXCollateral, err = ReadTDXCollateral(collateralFile); err != nil {
			return check, err
		}
	}
	if nonceHex != "" {
		if check.Nonce, err = ParseNonce(nonceHex); err != nil {
			return check, errcode.From(err).WithHint("pass the nonce the run's evidence must carry, the one the tenant's broker issued, in hex")
		}
	}
	return check, nil
}

// Print writes the log's records, the workload's stdout to stdout, the
// rest to stderr, or each as a JSON line to stdout; it returns how many.
// At the log's end it checks the end record (End), unless follow (a live
// log read as it grows, Follow) asks it to stop at the end of what is there.
func (r *LogReader) Print(stdout, stderr io.Writer, asJSON, follow bool) (int, error) {
	enc := json.NewEncoder(stdout)
	n := 0
	for {
		rec, err := r.Next()
		if err == io.EOF && follow {
			return n, nil
		}
		if err == io.EOF {
			return n, r.End()
		}
		if err != nil {
			return n, err
		}
		n++
		switch {
		case asJSON:
			enc.Encode(rec)
		case rec.Source == logging.SourceStdout:
			stdout.Write(rec.Message)
		case rec.Source == logging.SourceStderr:
			stderr.Write(rec.Message)
		default:
			msg := strings.TrimSuffix(string(rec.Message), "\n")
			fmt.Fprintf(stderr, "%s [runtime %s] %s\n", rec.Time.Format(time.RFC3339Nano), rec.Level, msg)
		}
	}
}

// WriteSummary says what the log was found bound to, having printed n
// records: intact, verified, or verified with warnings (which the caller
// shows, from Binding.Warnings).
func (r *LogReader) WriteSummary(w io.Writer, check LogCheck, n int) {
	h := r.Header()
	what := "log verified"
	switch {
	case check.Policy == nil:
		what = "log intact, evidence not judged"
	case r.Binding.Verdict != attest.Affirming:
		what = "log verified, with warnings"
	}
	fmt.Fprintf(w, "launch: %s: ref %s, profile %s, %d records, %d dropped, measurement %s\n", what, h.Ref, h.Profile, n, r.Dropped(), h.Measurement)
	fmt.Fprintf(w, "launch: bound to %s\n", r.Binding)
}

// LogFiles are what a tenant reads a run's log with, as 'launch logs
// decrypt' takes them: the identity file (never stdin, which may carry
// the log), the log (a file, or stdin for "" or "-"), what is asked of it
// (the files and values ReadLogCheck reads), whether a live log is
// followed (Follow) and its records printed as JSON lines, and a new file
// to write the run's evidence envelope to once the log is verified.
type LogFiles struct {
	Identity, Log                     string
	Policy, TDXCollateral, Nonce, Ref string
	EnvelopeOut                       string
	Follow, JSON                      bool
}

// DecryptedLog is a log DecryptLog read: its reader (whose Binding's
// warnings the caller shows), the check it passed and how many records
// were printed.
type DecryptedLog struct {
	Reader  *LogReader
	Check   LogCheck
	Records int
}

// WriteSummary says what the log was found bound to (LogReader.WriteSummary).
func (d *DecryptedLog) WriteSummary(w io.Writer) { d.Reader.WriteSummary(w, d.Check, d.Records) }

// DecryptLog reads the log of f: its check and identity first, then who
// wrote it (OpenLog), then its records, printed to stdout and stderr
// (Print), and last the envelope, written only once all of that passed.
// Each error carries its registered code.
func DecryptLog(ctx context.Context, f LogFiles, stdin io.Reader, stdout, stderr io.Writer) (*DecryptedLog, error) {
	check, err := ReadLogCheck(f.Policy, f.TDXCollateral, f.Nonce, f.Ref)
	if err != nil {
		return nil, err
	}
	id, err := ReadIdentity(f.Identity, nil)
	if err != nil {
		return nil, err
	}
	file, err := OpenLogFile(f.Log, stdin)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var log io.Reader = file
	if f.Follow {
		log = Follow(ctx, log)
	}
	r, err := OpenLog(log, id, check)
	if err != nil {
		return nil, err
	}
	d := &DecryptedLog{Reader: r, Check: check}
	if d.Records, err = r.Print(stdout, stderr, f.JSON, f.Follow); err != nil {
		return nil, err
	}
	if f.EnvelopeOut != "" {
		if err := WriteEnvelope(f.EnvelopeOut, r.Binding.Envelope); err != nil {
			return nil, err
		}
	}
	return d, nil
}
