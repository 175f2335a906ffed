package ampoule

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/tee"
)

// TestDefaultBackendIsTheProfiles: a run that names no backend asks for
// its profile's default, the simulator under debug and the machine's TEE
// elsewhere, so production without --backend is refused for want of a
// TEE (E3009) rather than for the simulator it never asked for (E3004).
func TestDefaultBackendIsTheProfiles(t *testing.T) {
	none, sev := tee.Platform{}, tee.Platform{SEVGuest: tee.SEVGuestDevice}
	for _, c := range []struct {
		profile  string
		plat     tee.Platform
		want     string
		wantCode errcode.Code
	}{
		{"debug", none, tee.KindSim, 0},
		{"debug", sev, tee.KindSim, 0},
		{"staging", none, tee.KindSim, 0},
		{"staging", sev, tee.KindSNP, 0},
		{"production", none, "", errcode.TEEUnavailable},
		{"production", sev, tee.KindSNP, 0},
	} {
		p, err := profiles.Get(c.profile)
		if err != nil {
			t.Fatal(err)
		}
		r := newRun(p, Config{Profile: c.profile, Platform: &c.plat})
		err = r.selectBackend()
		switch {
		case c.wantCode != 0 && (err == nil || errcode.From(err).Code != c.wantCode):
			t.Errorf("%s on %+v: %v, want %s", c.profile, c.plat, err, c.wantCode)
		case c.wantCode == 0 && (err != nil || r.kind != c.want):
			t.Errorf("%s on %+v: backend %q, %v; want %q", c.profile, c.plat, r.kind, err, c.want)
		}
	}
}

// TestAttestReadsTheBundleFirst: a missing path (E1002) or a profile the
// manifest does not allow (E3001) is the error to fix, whatever the
// backend; the backend is judged only for a bundle that can run.
func TestAttestReadsTheBundleFirst(t *testing.T) {
	ctx := context.Background()
	nonce := []byte{1}
	cfg := AttestConfig{Profile: "production", Platform: &tee.Platform{}, Nonce: nonce}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := Attest(ctx, missing, cfg); errcode.From(err).Code != errcode.BundleNotFound || !errcode.IsHost(err) {
		t.Errorf("a missing bundle under production: %v, want %s marked as the host's", err, errcode.BundleNotFound)
	}
	// testdata/tiny allows debug and staging only.
	if _, err := Attest(ctx, filepath.Join("testdata", "tiny"), cfg); errcode.From(err).Code != errcode.ProfileNotAllowed {
		t.Errorf("a bundle not allowing production: %v, want %s", err, errcode.ProfileNotAllowed)
	}
	cfg.Backend = tee.KindSim
	if _, err := Attest(ctx, filepath.Join("testdata", "tiny"), cfg); errcode.From(err).Code != errcode.ProfileNotAllowed {
		t.Errorf("a bundle not allowing production, --backend sim: %v, want %s", err, errcode.ProfileNotAllowed)
	}
	if _, err := Attest(ctx, testwasm.Example(t, "hello"), cfg); errcode.From(err).Code != errcode.BackendRefused || !errcode.IsHost(err) {
		t.Errorf("production on the simulator: %v, want %s marked as the host's", err, errcode.BackendRefused)
	}
}

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
