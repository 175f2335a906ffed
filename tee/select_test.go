package tee_test

import (
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/profiles"
	"github.com/ampoule-run/ampoule/tee"
)

// TestSelectBackend: auto takes the machine's TEE and falls back to the
// simulator only where the profile allows it; a named backend needs its
// device and the profile's consent; "snp" is SEV-SNP.
func TestSelectBackend(t *testing.T) {
	none := tee.Platform{}
	snp := tee.Probe(func(p string) bool { return p == tee.SEVGuestDevice })
	tdx := tee.Probe(func(p string) bool { return p == tee.TDXGuestDevice })
	for _, tc := range []struct {
		profile, backend string
		plat             tee.Platform
		want             string
		code             errcode.Code
	}{
		{"debug", "auto", none, "sim", 0},
		{"staging", "auto", none, "sim", 0},
		{"production", "auto", none, "", errcode.TEEUnavailable},
		{"production", "sim", none, "", errcode.BackendRefused},
		{"production", "auto", snp, "sev-snp", 0},
		{"production", "auto", tdx, "tdx", 0},
		{"production", "snp", snp, "sev-snp", 0},
		{"debug", "snp", none, "", errcode.TEEUnavailable},
		{"debug", "tdx", tdx, "tdx", 0},
		{"production", "tdx", snp, "", errcode.TEEUnavailable},
		{"debug", "kvm", none, "", errcode.BackendUnknown},
		{"debug", "", none, "sim", 0},
		{"production", "", snp, "sev-snp", 0},
	} {
		p, _ := profiles.Get(tc.profile)
		got, err := tee.Select(tc.backend, tc.plat, p.Name, p.Backends)
		if got != tc.want || (tc.code == 0) != (err == nil) || (err != nil && errcode.From(err).Code != tc.code) {
			t.Errorf("%s/%s on %+v: %q %v, want %q %v", tc.profile, tc.backend, tc.plat, got, err, tc.want, tc.code)
		}
	}
	// A profile that names one TEE does not run on the other, even where it
	// is the machine's own.
	only, _ := profiles.Get("production")
	only.Backends = []string{"tdx"}
	for _, backend := range []string{"auto", "snp", "sev-snp"} {
		if got, err := tee.Select(backend, snp, only.Name, only.Backends); got != "" || errcode.From(err).Code != errcode.BackendRefused {
			t.Errorf("a tdx-only profile, %s on sev-snp: %q %v, want BackendRefused", backend, got, err)
		}
	}
	if snp.Kind() != "sev-snp" || tdx.Kind() != "tdx" || none.Kind() != "" {
		t.Error("Platform.Kind is wrong")
	}
}
