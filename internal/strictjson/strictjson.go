// Package strictjson decodes one JSON document strictly, as every
// Ampoule format that crosses a trust boundary is read: an unknown field
// or anything after the document is an error, not something to ignore.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Decode reads data, which must be exactly one JSON document, into v.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one document")
	}
	return nil
}
