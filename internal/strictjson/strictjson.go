// Package strictjson decodes one JSON document strictly, as every
// Ampoule format that crosses a trust boundary is read: an unknown field
// or anything after the document is an error, not something to ignore.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Decode reads data, which must be exactly one JSON document, into v.
func Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// Anything but the end after the document (another one, a stray
	// bracket, garbage) is refused.
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("data after the document")
	}
	return nil
}
