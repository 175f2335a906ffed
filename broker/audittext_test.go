package broker

import (
	"strings"
	"testing"
	"time"
)

// TestAuditRecordWriteText: a decision is one line with its reasons
// beneath; an aggregate lists its counts sorted, and says how many values
// were not kept.
func TestAuditRecordWriteText(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	var b strings.Builder
	AuditRecord{Time: at, Status: "affirming", Kind: "sim", Profile: "staging", Bundle: &AuditBundle{Name: "hello", Version: "1", Bound: true}, Measurement: "ab", Remote: "127.0.0.1",
		Released: []string{"a", "b"}, Reasons: []string{"insecure"}}.WriteText(&b)
	want := "2026-01-02T15:04:05Z affirming       sim      staging    hello 1 ab 127.0.0.1 released=[a,b]\n    - insecure\n"
	if b.String() != want {
		t.Errorf("decision:\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	AuditRecord{Time: at, Aggregate: &AuditAggregate{Count: 3, Until: at.Add(time.Minute), Reasons: map[string]int{"z": 1, "a": 2}, Other: 4}}.WriteText(&b)
	want = "2026-01-02T15:04:05Z 3 refused decisions beyond the audit budget, until 2026-01-02T15:05:05Z\n" +
		"    reason a: 2\n    reason z: 1\n    and 4 values beyond those kept\n"
	if b.String() != want {
		t.Errorf("aggregate:\n%q\nwant\n%q", b.String(), want)
	}
}
