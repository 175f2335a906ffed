package loader

import (
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

// MeasurementDomain separates Ampoule measurements from every other SHA-384.
const MeasurementDomain = "ampoule/measurement/v1"

// Measurement identifies exactly what runs: the module, the manifest and the
// profile. It is what a verifier compares against a reference value.
type Measurement [48]byte

// String returns the measurement in lower-case hex.
func (m Measurement) String() string { return hex.EncodeToString(m[:]) }

// Measure computes
//
//	SHA-384("ampoule/measurement/v1" ‖ len‖SHA-384(module) ‖ len‖canonical_manifest ‖ len‖profile)
//
// where each len is the field's length as a big-endian uint64.
func Measure(b *Bundle, profile string) Measurement {
	return MeasureParts(b.ModuleSHA384(), b.Manifest.Canonical(), profile)
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// MeasureParts is Measure from its parts: the module's SHA-384, the
// manifest's canonical encoding and the profile. A verifier holding the
// parts recomputes a measurement the evidence binds, and so knows the
// manifest's name and version are the measured bundle's.
func MeasureParts(module [48]byte, canonicalManifest []byte, profile string) Measurement {
	h := sha512.New384()
	h.Write([]byte(MeasurementDomain))
	writeField(h, module[:])
	writeField(h, canonicalManifest)
	writeField(h, []byte(profile))
	var m Measurement
	h.Sum(m[:0])
	return m
}
