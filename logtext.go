package ampoule

import (
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
