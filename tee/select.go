package tee

import (
	"fmt"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
)

// The backend kinds: the one spelling each of a backend, its evidence, a
// profile's list of backends and a policy's, everywhere.
const (
	KindSim = "sim"     // the software simulator: insecure
	KindSNP = "sev-snp" // AMD SEV-SNP
	KindTDX = "tdx"     // Intel TDX
)

// Auto asks Select for the platform's own TEE.
const Auto = "auto"

// ParseKind returns the kind a user names: a kind, or "snp" for SEV-SNP,
// as the command line also accepts it. Anything else is "", false.
func ParseKind(name string) (string, bool) {
	switch name {
	case KindSim, KindSNP, KindTDX:
		return name, true
	case "snp":
		return KindSNP, true
	}
	return "", false
}

// Select resolves the backend a run asks for (a kind, "snp" or Auto;
// empty is Auto) on a platform, for a profile that allows the kinds in
// allowed. Auto picks the platform's TEE and falls back to the simulator
// only where the profile allows it: production never does. A hardware
// backend needs its device; without it the error says what is missing.
// Every error is registered: E3004 backend-refused, E1015 backend-unknown,
// E3009 tee-unavailable; each is about the host's own flag and machine
// (errcode.IsHost).
func Select(name string, plat Platform, profile string, allowed []string) (string, error) {
	allows := func(kind string) bool {
		for _, k := range allowed {
			if k == kind {
				return true
			}
		}
		return false
	}
	refused := func(kind string) error {
		return errcode.Errorf(errcode.BackendRefused, "the %s profile does not run on backend %s", profile, kind).
			WithHint(fmt.Sprintf("the %s profile allows: %s", profile, strings.Join(allowed, ", "))).Host()
	}
	hardware := func(kind, device, want string) (string, error) {
		if device == "" {
			return "", errcode.Errorf(errcode.TEEUnavailable, "backend %s needs %s, and this machine has none: it is not a %s guest", kind, want, kind).
				WithHint("'launch platform info' says what this machine offers").Host()
		}
		if !allows(kind) {
			return "", refused(kind)
		}
		return kind, nil
	}
	if name == "" {
		name = Auto
	}
	if name == Auto {
		switch plat.Kind() {
		case KindSNP, KindTDX:
			name = plat.Kind()
		default:
			if allows(KindSim) {
				return KindSim, nil
			}
			return "", errcode.Errorf(errcode.TEEUnavailable, "no TEE on this machine (no %s, %s or %s), and the %s profile never falls back to the simulator", SEVGuestDevice, TDXGuestDevice, ConfigfsTSM, profile).
				WithHint("run inside an SEV-SNP or TDX guest, or choose a profile that allows --backend sim").Host()
		}
	}
	kind, ok := ParseKind(name)
	switch {
	case !ok:
		return "", errcode.Errorf(errcode.BackendUnknown, "no backend %q", name).WithHint("the backends are: auto, sim, snp (sev-snp), tdx").Host()
	case kind == KindSim:
		if !allows(KindSim) {
			return "", refused(KindSim)
		}
		return KindSim, nil
	case kind == KindSNP:
		return hardware(KindSNP, plat.SEVGuest, SEVGuestDevice)
	}
	return hardware(KindTDX, plat.TDXGuest, TDXGuestDevice)
}
