package ampoule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
)

// ReadSecretValue reads a secret's value from file, or stdin for "-", as
// it is (a trailing newline is part of it), at most the broker's bound;
// empty, too large or unreadable is E1061 secret-value-invalid.
func ReadSecretValue(file string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
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

// SecretStore is where a broker's secrets are changed: its database
// (*broker.Server), or the broker serving that database, over its
// administration socket.
type SecretStore interface {
	PutResource(path string, value []byte) error
	RemoveResource(path string) error
	Resources() ([]broker.ResourceInfo, error)
}

// OpenSecrets opens the secrets of the broker database db. A broker
// serving db holds it, so a change goes through its administration socket
// (the broker user's, 0600), the value in the request's body, and served
// is true; with none serving, the database is opened here. close releases
// what was opened.
func OpenSecrets(ctx context.Context, db string) (store SecretStore, served bool, close func(), err error) {
	admin := adminStore{ctx, broker.DialAdmin(broker.AdminSocket(db))}
	if _, err := admin.Resources(); !errors.Is(err, broker.ErrNoAdmin) {
		return admin, true, func() {}, nil
	}
	srv, err := OpenBroker(db, "", "off")
	if err != nil {
		return nil, false, nil, err
	}
	return srv, false, func() { srv.Close() }, nil
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

func (s adminStore) Resources() ([]broker.ResourceInfo, error) { return s.a.Resources(s.ctx) }

// PutSecret stores value as the broker's resource path, sealed under its
// master key; RemoveSecret removes one, Secrets lists them. Each refusal
// has its code: a path that is no REPO/TYPE/TAG, a value out of bounds, a
// resource not there, a serving broker that does not answer.
func PutSecret(store SecretStore, path string, value []byte) error {
	return resourceError(store.PutResource(path, value))
}

// RemoveSecret removes the broker's resource path (PutSecret).
func RemoveSecret(store SecretStore, path string) error {
	return resourceError(store.RemoveResource(path))
}

// Secrets lists the broker's resources, never their values; none is an
// empty list.
func Secrets(store SecretStore) ([]broker.ResourceInfo, error) {
	list, err := store.Resources()
	if err != nil {
		return nil, resourceError(err)
	}
	if list == nil {
		list = []broker.ResourceInfo{}
	}
	return list, nil
}

// resourceError gives a store's refusal its code.
func resourceError(err error) error {
	switch {
	case err == nil:
		return nil
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
