package errcode

import (
	"fmt"
	"strings"
	"testing"
)

// TestStaticShowsTheHostsOwnErrors: Static shows an error marked Host in
// full, with its hint and the ref, and every other error, one wrapping a
// marked error under a code of its own included, as its code and ref.
func TestStaticShowsTheHostsOwnErrors(t *testing.T) {
	const ref = "0123456789abcdef"
	host := Errorf(LogSinkUnavailable, "open /nodir/x.log: no such file or directory").Host().WithHint("pass --log-out FILE in a directory that exists")
	want := "launch: error: E1021 log-sink-unavailable: open /nodir/x.log: no such file or directory (ref " + ref + ")\nlaunch: hint: pass --log-out FILE in a directory that exists\n"
	if got := Static(host, ref); got != want {
		t.Errorf("Static(host error) = %q, want %q", got, want)
	}
	if !IsHost(fmt.Errorf("opening the sink: %w", host)) {
		t.Error("a plain wrapper hides the mark")
	}
	for _, e := range []error{
		Errorf(ManifestInvalid, "ampoule.toml:3: tenant secret"),
		Errorf(ManifestInvalid, "ampoule.toml: %w", host),
		Wrap(ManifestInvalid, host),
		fmt.Errorf("no code at all"),
	} {
		if IsHost(e) {
			t.Errorf("IsHost(%q) is true", e)
		}
		got := Static(e, ref)
		if strings.Contains(got, "secret") || strings.Contains(got, "nodir") || !strings.HasSuffix(got, "(ref "+ref+")\n") || strings.Count(got, "\n") != 1 {
			t.Errorf("Static(%q) = %q, want the code and ref alone", e, got)
		}
	}
	if host.Code != LogSinkUnavailable || Errorf(Usage, "x").Host().Hint() != Usage.Hint() {
		t.Error("Host changed the code or the hint")
	}
}
