package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
)

// brokerSecret is 'launch broker secret': the broker's stored resources,
// the secrets a manifest's [secrets] names. A value comes from a file or
// stdin, never from the command line (which other users of the machine
// and the shell's history see), and is never printed. The process is
// protected already: the master key that seals every value, and the
// value, are in its memory.
func brokerSecret(ctx context.Context, e *cliEnv, c command, in invocation, db string, asJSON bool) int {
	if len(in.Pos) == 0 || (in.Pos[0] != "put" && in.Pos[0] != "list" && in.Pos[0] != "rm") {
		return e.fail(errcode.Errorf(errcode.Usage, "broker secret takes the subcommand put, list or rm").WithHint("usage: launch " + c.doc.Usage))
	}
	sub, pos := in.Pos[0], in.Pos[1:]
	want := map[string]int{"put": 2, "list": 0, "rm": 1}[sub]
	if len(pos) != want || len(in.Rest) > 0 {
		return e.fail(errcode.Errorf(errcode.Usage, "broker secret %s takes %d arguments, not %d", sub, want, len(pos)+len(in.Rest)).WithHint("usage: launch " + c.doc.Usage))
	}
	var err error
	var value []byte
	if sub == "put" {
		if value, err = ampoule.ReadSecretValue(pos[1], e.stdin); err != nil {
			return e.fail(err)
		}
		defer clear(value)
	}
	store, served, closeStore, err := ampoule.OpenSecrets(ctx, db)
	if err != nil {
		return e.fail(err)
	}
	defer closeStore()
	if served {
		fmt.Fprintf(e.stderr, "launch: through the serving broker over %s\n", broker.AdminSocket(db))
	}
	switch sub {
	case "put":
		if err := ampoule.PutSecret(store, pos[0], value); err != nil {
			return e.fail(err)
		}
		note := ""
		if value[len(value)-1] == '\n' {
			note = "; it ends with a newline, which the guest reads too"
		}
		fmt.Fprintf(e.stdout, "stored %s (%d bytes, sealed under the broker's master key%s)\n", pos[0], len(value), note)
	case "rm":
		if err := ampoule.RemoveSecret(store, pos[0]); err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "removed %s\n", pos[0])
	case "list":
		list, err := ampoule.Secrets(store)
		if err != nil {
			return e.fail(err)
		}
		if asJSON {
			return writeJSON(e, list)
		}
		for _, r := range list {
			fmt.Fprintf(e.stdout, "%-40s %6d bytes  updated %s  created %s\n", r.Path, r.Size, r.Updated.Format(time.RFC3339), r.Created.Format(time.RFC3339))
		}
	}
	return 0
}
