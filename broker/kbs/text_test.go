package kbs

import (
	"strings"
	"testing"
	"time"
)

// TestClaimsWriteText: the text form says the verdict and what it is about,
// marks a bundle the evidence does not bind as claimed, and lists each
// reason on its own line.
func TestClaimsWriteText(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	c := &Claims{Verdict: "warning", Backend: "sim", Profile: "staging", Measurement: "ab12",
		Reasons: []string{"insecure simulator", "old TCB"}, Bundle: &BundleClaim{Name: "hello", Version: "1"},
		IssuedAt: at, Expires: at.Add(time.Hour), Issuer: "broker"}
	var b strings.Builder
	c.WriteText(&b)
	want := "warning: sim evidence, profile staging, measurement ab12\n" +
		"bundle hello 1 (claimed)\n" +
		"issued 2026-01-02T15:04:05Z by broker, expires 2026-01-02T16:04:05Z\n" +
		"  - insecure simulator\n  - old TCB\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	c.Bundle.Bound = true
	b.Reset()
	c.WriteText(&b)
	if !strings.Contains(b.String(), "bundle hello 1\n") {
		t.Errorf("a bound bundle is not shown as bound:\n%s", b.String())
	}
}
