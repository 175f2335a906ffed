package broker

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestEventWriteText: where the broker answers and its key go to stdout,
// warnings and reloads to stderr, one line each.
func TestEventWriteText(t *testing.T) {
	key := []byte{0xab, 0xcd}
	cases := []struct {
		ev             Event
		stdout, stderr string
	}{
		{Event{Kind: Listening, URL: "https://127.0.0.1:8443"}, "broker key: abcd\nlistening on https://127.0.0.1:8443\n", ""},
		{Event{Kind: PlainHTTP, URL: "http://127.0.0.1:8080"}, "", "launch: warning: serving plain HTTP on 127.0.0.1:8080: answers are signed, but the metadata is in the clear; pass --tls-cert and --tls-key to serve beyond this machine\n"},
		{Event{Kind: AdminServing, URL: "/run/b.sock"}, "audit socket: /run/b.sock\n", ""},
		{Event{Kind: AdminFailed, Err: errors.New("in use")}, "", "launch: warning: 'launch broker audit' cannot read the trail while this broker serves: in use\n"},
		{Event{Kind: Reloaded}, "", "launch: policy reloaded from p.toml\n"},
		{Event{Kind: ReloadFailed, Err: errors.New("bad")}, "", "launch: warning: the policy was not reloaded, the one served stays: bad\n"},
	}
	for _, c := range cases {
		var out, errw strings.Builder
		c.ev.WriteText(&out, &errw, key, "p.toml")
		if out.String() != c.stdout || errw.String() != c.stderr {
			t.Errorf("kind %d: stdout %q stderr %q, want %q and %q", c.ev.Kind, out.String(), errw.String(), c.stdout, c.stderr)
		}
	}
}

// TestWriteResourcesText: one aligned line per resource, no value; an
// empty list prints nothing.
func TestWriteResourcesText(t *testing.T) {
	at := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	var b strings.Builder
	WriteResourcesText(&b, []ResourceInfo{{Path: "default/db/password", Size: 12, Created: at, Updated: at.Add(time.Hour)}})
	want := "default/db/password                          12 bytes  updated 2026-01-02T16:04:05Z  created 2026-01-02T15:04:05Z\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	WriteResourcesText(&b, nil)
	if b.String() != "" {
		t.Errorf("empty list printed %q", b.String())
	}
}
