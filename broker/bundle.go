package broker

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/ampoule-run/ampoule/loader"
)

// Bundle names the bundle a request is for, with what proves it: the
// manifest's canonical encoding and the module's SHA-384, from which the
// broker recomputes the measurement the evidence binds. Name and Version
// alone, without the proof, are only claimed: the audit trail says so.
type Bundle struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Manifest is the manifest's canonical encoding (loader's Canonical),
	// as measured.
	Manifest json.RawMessage `json:"manifest,omitempty"`
	// Module is the module's SHA-384, in hex.
	Module string `json:"module_sha384,omitempty"`
}

// BundleOf is the Bundle of b, with its proof.
func BundleOf(b *loader.Bundle) *Bundle {
	d := b.ModuleSHA384()
	return &Bundle{Name: b.Manifest.Name, Version: b.Manifest.Version, Manifest: b.Manifest.Canonical(), Module: hex.EncodeToString(d[:])}
}

// AuditBundle is the bundle an audit record names. Bound says the broker
// recomputed the evidence's measurement from the bundle's manifest and
// module digest, so the name and version are the measured bundle's;
// unbound, they are only what the request claimed.
type AuditBundle struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Bound   bool   `json:"bound"`
}

// String is the bundle as the audit trail prints it: "name version", with
// "(claimed)" after a name that is not bound.
func (b *AuditBundle) String() string {
	if b == nil {
		return "-"
	}
	s := b.Name
	if b.Version != "" {
		s += " " + b.Version
	}
	if !b.Bound {
		s += " (claimed)"
	}
	return s
}

// bind checks b against the measurement (hex) and profile the evidence
// binds: the bundle the audit names, and the reason to refuse when the
// proof is given but does not make the measurement (an altered request).
func (b *Bundle) bind(measurement, profile string) (*AuditBundle, string) {
	if b == nil {
		return nil, ""
	}
	a := &AuditBundle{Name: truncate(b.Name, 64), Version: truncate(b.Version, 64)}
	if len(b.Manifest) == 0 && b.Module == "" {
		return a, ""
	}
	d, err := hex.DecodeString(b.Module)
	if err != nil || len(d) != 48 {
		return a, "the bundle's module digest is not 96 hex digits"
	}
	var module [48]byte
	copy(module[:], d)
	if loader.MeasureParts(module, b.Manifest, profile).String() != measurement {
		return a, "the bundle's manifest and module digest do not make the evidence's measurement"
	}
	var named struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(b.Manifest, &named); err != nil {
		return a, fmt.Sprintf("the bundle's manifest is not JSON: %v", err)
	}
	if named.Name != b.Name || named.Version != b.Version {
		return a, "the bundle's name or version is not its manifest's"
	}
	a.Bound = true
	return a, ""
}
