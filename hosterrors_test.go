package ampoule

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
)

// TestHideKeepsTheHostsOwnErrors: under a static profile an error marked
// as about the host's own input keeps its detail and hint, and anything
// else, a wrapper around a marked error included, is its code and ref.
func TestHideKeepsTheHostsOwnErrors(t *testing.T) {
	p, err := profiles.Get("staging")
	if err != nil {
		t.Fatal(err)
	}
	r := newRun(p, Config{Profile: "staging", Ref: "0123456789abcdef"})
	host := errcode.Errorf(errcode.HostOverrideRefused, "--env is refused").WithHint("put it in ampoule.toml").Host()
	if got := r.hide(host); got.Error() != "--env is refused" || errcode.From(got).Hint() != "put it in ampoule.toml" {
		t.Errorf("a host error: %q, hint %q", got, errcode.From(got).Hint())
	}
	// A plain wrapper's own text is not the host's: it goes.
	if got := r.hide(fmt.Errorf("tenant secret: %w", host)); strings.Contains(got.Error(), "secret") || got.Error() != "--env is refused" {
		t.Errorf("a wrapped host error: %q", got)
	}
	static := "E1008 manifest-invalid (ref 0123456789abcdef)"
	for _, e := range []error{
		errcode.Errorf(errcode.ManifestInvalid, "ampoule.toml:3: tenant secret"),
		errcode.Errorf(errcode.ManifestInvalid, "bundle says: %w", host),
	} {
		got := r.hide(e)
		if got.Error() != static || errcode.IsHost(got) {
			t.Errorf("hide(%q) = %q, want %q", e, got, static)
		}
	}
}
