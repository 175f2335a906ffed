package ampoule

import (
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

// PutSecret stores value as the broker's resource path, sealed under its
// master key; RemoveSecret removes one, Secrets lists them. Each refusal
// has its code: a path that is no REPO/TYPE/TAG, a value out of bounds, a
// resource not there.
func PutSecret(srv *broker.Server, path string, value []byte) error {
	return resourceError(srv.PutResource(path, value))
}

// RemoveSecret removes the broker's resource path (PutSecret).
func RemoveSecret(srv *broker.Server, path string) error {
	return resourceError(srv.RemoveResource(path))
}

// Secrets lists the broker's resources, never their values; none is an
// empty list.
func Secrets(srv *broker.Server) ([]broker.ResourceInfo, error) {
	list, err := srv.Resources()
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "reading the broker's secrets: %v", err)
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
	}
	return errcode.Errorf(errcode.Internal, "the broker's secrets: %v", err)
}
