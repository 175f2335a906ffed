package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/logging"
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
		usage:   "logs decrypt --identity IDENTITY [--json] [--follow] [LOG|-]",
		help: `
Logs decrypt opens a log written under staging or production with the
tenant's identity and prints its records in order: the workload's stdout
to stdout, its stderr and the runtime's records to stderr (or every record
as a JSON line with --json). It fails, with a registered code, on the first
record that was dropped, repeated, reordered, spliced from another run or
altered, on a wrong identity, and on a log without its end record; what it
printed before the failure is genuine. --follow waits for a live log to
grow until its end record.

Examples:
  launch logs decrypt --identity tenant.key run.log
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
	if !*asJSON {
		fmt.Fprintf(e.stderr, "launch: log verified: ref %s, profile %s, %d records, %d dropped, measurement %s\n", h.Ref, h.Profile, n, r.Dropped, h.Measurement)
	}
	return 0
}

// logError maps a reader's error to its registered code.
func logError(err error) error {
	switch {
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
func openSink(spec string, stderr io.Writer) (io.Writer, func() error, error) {
	switch {
	case spec == "" || spec == "-":
		return stderr, func() error { return nil }, nil
	case strings.HasPrefix(spec, "unix:"):
		conn, err := net.Dial("unix", strings.TrimPrefix(spec, "unix:"))
		if err != nil {
			return nil, nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
		}
		return conn, conn.Close, nil
	default:
		f, err := os.OpenFile(spec, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, nil, errcode.Errorf(errcode.LogSinkUnavailable, "%v", err)
		}
		return f, f.Close, nil
	}
}
