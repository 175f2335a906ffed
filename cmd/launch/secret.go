package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
		if value, err = readSecretValue(e, pos[1]); err != nil {
			return e.fail(err)
		}
		defer clear(value)
	}
	// A broker serving db holds it: the change goes through its
	// administration socket (root's, 0600), the value in the request's
	// body. With none serving, the database is opened here.
	var store secretStore = adminStore{ctx, broker.DialAdmin(broker.AdminSocket(db))}
	if _, err := store.Resources(); errors.Is(err, broker.ErrNoAdmin) {
		srv, err := ampoule.OpenBroker(db, "", "off")
		if err != nil {
			return e.fail(err)
		}
		defer srv.Close()
		store = srv
	} else {
		fmt.Fprintf(e.stderr, "launch: through the serving broker over %s\n", broker.AdminSocket(db))
	}
	switch sub {
	case "put":
		if err := store.PutResource(pos[0], value); err != nil {
			return e.fail(resourceError(err))
		}
		note := ""
		if value[len(value)-1] == '\n' {
			note = "; it ends with a newline, which the guest reads too"
		}
		fmt.Fprintf(e.stdout, "stored %s (%d bytes, sealed under the broker's master key%s)\n", pos[0], len(value), note)
	case "rm":
		if err := store.RemoveResource(pos[0]); err != nil {
			return e.fail(resourceError(err))
		}
		fmt.Fprintf(e.stdout, "removed %s\n", pos[0])
	case "list":
		list, err := store.Resources()
		if err != nil {
			return e.fail(errcode.Errorf(errcode.Internal, "reading the broker's secrets: %v", err))
		}
		if asJSON {
			if list == nil {
				list = []broker.ResourceInfo{}
			}
			return writeJSON(e, list)
		}
		for _, r := range list {
			fmt.Fprintf(e.stdout, "%-40s %6d bytes  updated %s  created %s\n", r.Path, r.Size, r.Updated.Format(time.RFC3339), r.Created.Format(time.RFC3339))
		}
	}
	return 0
}

// secretStore is where 'broker secret' acts: the database itself
// (*broker.Server), or the broker serving it.
type secretStore interface {
	PutResource(path string, value []byte) error
	RemoveResource(path string) error
	Resources() ([]broker.ResourceInfo, error)
}

// adminStore is the serving broker's store, over its administration
// socket.
type adminStore struct {
	ctx context.Context
	a   *broker.Admin
}

func (s adminStore) PutResource(path string, value []byte) error {
	return s.a.PutResource(s.ctx, path, value)
}
func (s adminStore) RemoveResource(path string) error { return s.a.RemoveResource(s.ctx, path) }
func (s adminStore) Resources() ([]broker.ResourceInfo, error) {
	return s.a.Resources(s.ctx)
}

// readSecretValue reads a secret's value from file, or stdin for "-", as
// it is (a trailing newline is part of it), at most the broker's bound.
func readSecretValue(e *cliEnv, file string) ([]byte, error) {
	var r io.Reader = e.stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, errcode.Errorf(errcode.SecretValueInvalid, "%v", err)
		}
		defer f.Close()
		r = f
	}
	if r == nil {
		return nil, errcode.Errorf(errcode.SecretValueInvalid, "no stdin to read the value from")
	}
	value, err := io.ReadAll(io.LimitReader(r, broker.MaxResourceBytes+1))
	if err != nil {
		return nil, errcode.Errorf(errcode.SecretValueInvalid, "reading the value: %v", err)
	}
	if len(value) == 0 || len(value) > broker.MaxResourceBytes {
		clear(value)
		what := "is empty"
		if len(value) > 0 {
			what = fmt.Sprintf("is more than %d bytes", broker.MaxResourceBytes)
		}
		return nil, errcode.Errorf(errcode.SecretValueInvalid, "the value %s", what)
	}
	return value, nil
}

// resourceError gives a store's refusal its code.
func resourceError(err error) error {
	switch {
	case errors.Is(err, broker.ErrResourcePath):
		return errcode.Errorf(errcode.ResourcePathInvalid, "%v", err)
	case errors.Is(err, broker.ErrResourceValue):
		return errcode.Errorf(errcode.SecretValueInvalid, "%v", err)
	case errors.Is(err, broker.ErrNoResource):
		return errcode.Errorf(errcode.SecretNotFound, "%v", err)
	case errors.Is(err, broker.ErrUnavailable), errors.Is(err, broker.ErrProtocol):
		return errcode.Errorf(errcode.BrokerUnavailable, "the serving broker's administration: %v", err)
	}
	return errcode.Errorf(errcode.Internal, "the broker's secrets: %v", err)
}
