package logging

import (
	"encoding/json"
	"testing"
	"time"
)

// TestRecordJSON: a record is one object with its level and source by
// name and its message as text.
func TestRecordJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	got, err := json.Marshal(&Record{Seq: 7, Time: at, Level: LevelWarn, Source: SourceStderr, Message: []byte("oops\n")})
	want := `{"seq":7,"time":"2026-01-02T03:04:05Z","level":"` + LevelWarn.String() + `","source":"` + SourceStderr.String() + `","message":"oops\n"}`
	if err != nil || string(got) != want {
		t.Errorf("%s, %v; want %s", got, err, want)
	}
}
