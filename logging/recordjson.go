package logging

import (
	"encoding/json"
	"time"
)

// MarshalJSON is the record as one JSON object: its sequence number, time,
// level and source by name, and its message as text, as 'launch logs
// decrypt --json' prints each record.
func (r Record) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Seq     uint64    `json:"seq"`
		Time    time.Time `json:"time"`
		Level   string    `json:"level"`
		Source  string    `json:"source"`
		Message string    `json:"message"`
	}{r.Seq, r.Time, r.Level.String(), r.Source.String(), string(r.Message)})
}
