package ampoule

import (
	"encoding/hex"
	"encoding/json"

	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/profiles"
)

// MeasureReport is a bundle's measurement under a profile and what went
// into it: the module's digest and the canonical manifest (generated for a
// bare module), and whether the manifest allows the profile.
type MeasureReport struct {
	Measurement       string          `json:"measurement"`
	Profile           string          `json:"profile"`
	Name              string          `json:"name"`
	ModuleSHA384      string          `json:"module_sha384"`
	CanonicalManifest json.RawMessage `json:"canonical_manifest"`
	Generated         bool            `json:"generated_manifest"`
	ProfileAllowed    bool            `json:"profile_allowed"`
}

// Measure reads the bundle at path and measures it under the profile, as
// a verifier's reference value; it needs no TEE. An unknown profile or a
// bundle that does not load is refused with its code.
func Measure(path, profile string) (MeasureReport, error) {
	if _, err := profiles.Get(profile); err != nil {
		return MeasureReport{}, err
	}
	b, err := loader.Open(path)
	if err != nil {
		return MeasureReport{}, err
	}
	digest := b.ModuleSHA384()
	return MeasureReport{loader.Measure(b, profile).String(), profile, b.Manifest.Name, hex.EncodeToString(digest[:]),
		b.Manifest.Canonical(), b.Generated, b.Manifest.AllowsProfile(profile)}, nil
}
