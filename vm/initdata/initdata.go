// Package initdata is the init-data document a confidential VM is launched
// with: the bundle measurement it may run, under which profile, with the
// tenant's log recipients and broker. The host sets its digest as the
// VM's launch configuration (SEV-SNP HOST_DATA: SHA-256; TDX MRCONFIGID:
// SHA-384), which the hardware then puts in every report, so a launcher
// handed the document can check it is the one its VM was launched with,
// and a verifier reading it beside the report can check both.
//
// The digests are over the document's exact bytes, as Confidential
// Containers takes them: Encode gives one byte string for a document, and
// Decode reads a document strictly (unknown keys, a missing key, a bad
// value and a second table of one name are errors).
package initdata

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Version is the document format this package writes and reads.
const Version = 1

// MaxSize bounds a document's encoded size.
const MaxSize = 64 << 10

// maxRecipients bounds the log recipients, as the manifest does.
const maxRecipients = 16

// profileNames are the profiles a document may name (package profiles'
// names; repeated here so that this package stays a leaf a verifier can
// import).
var profileNames = []string{"debug", "staging", "production"}

// Document is one VM's init-data.
type Document struct {
	// Version is Version.
	Version int `toml:"version"`
	// Measurement is the bundle measurement the VM runs (96 hex digits,
	// lower case): loader.Measure of the bundle under Profile.
	Measurement string `toml:"measurement"`
	// Profile is the profile the bundle runs under.
	Profile string `toml:"profile"`
	// LogRecipients are the tenant's log public keys from the bundle's
	// manifest (none under a debug bundle that names none).
	LogRecipients []string `toml:"log_recipients,omitempty"`
	// Broker is the manifest's broker, or nil.
	Broker *Broker `toml:"broker,omitempty"`
}

// Broker is the tenant's key broker as the manifest names it.
type Broker struct {
	URL string `toml:"url"`
	// Key is the broker's Ed25519 public key, standard base64.
	Key string `toml:"key"`
}

// ErrInvalid wraps every reason a document cannot be read.
var ErrInvalid = errors.New("not a valid init-data document")

// Encode returns the document's one encoding: the bytes whose digests the
// VM is launched with. It refuses a document Decode would refuse.
func (d *Document) Encode() ([]byte, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString("# Ampoule init-data: its SHA-256 is the VM's SEV-SNP HOST_DATA, its SHA-384 its TDX MRCONFIGID.\n")
	enc := toml.NewEncoder(&buf)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return buf.Bytes(), nil
}

// Decode reads a document strictly.
func Decode(data []byte) (*Document, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(data), MaxSize)
	}
	var d Document
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			return nil, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimSpace(strict.String()))
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

func (d *Document) validate() error {
	if d.Version != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, d.Version, Version)
	}
	if b, err := hex.DecodeString(d.Measurement); err != nil || len(b) != 48 || d.Measurement != hex.EncodeToString(b) {
		return fmt.Errorf("%w: the measurement is not 96 lower-case hex digits", ErrInvalid)
	}
	if !slices.Contains(profileNames, d.Profile) {
		return fmt.Errorf("%w: the profile %q is not one of %s", ErrInvalid, d.Profile, strings.Join(profileNames, ", "))
	}
	if len(d.LogRecipients) > maxRecipients {
		return fmt.Errorf("%w: %d log recipients, more than %d", ErrInvalid, len(d.LogRecipients), maxRecipients)
	}
	for i, r := range d.LogRecipients {
		if r == "" || len(r) > 256 || slices.Contains(d.LogRecipients[:i], r) {
			return fmt.Errorf("%w: log recipient %d is empty, longer than 256 bytes or given twice", ErrInvalid, i+1)
		}
	}
	if b := d.Broker; b != nil {
		if !strings.HasPrefix(b.URL, "https://") && !strings.HasPrefix(b.URL, "http://") || len(b.URL) > 2048 {
			return fmt.Errorf("%w: the broker's url is not an http(s) URL of at most 2048 bytes", ErrInvalid)
		}
		if k, err := base64.StdEncoding.DecodeString(b.Key); err != nil || len(k) != 32 {
			return fmt.Errorf("%w: the broker's key is not a base64 Ed25519 public key", ErrInvalid)
		}
	}
	return nil
}

// MeasurementBytes is the document's measurement.
func (d *Document) MeasurementBytes() [48]byte {
	var m [48]byte
	hex.Decode(m[:], []byte(d.Measurement))
	return m
}

// HostData is SEV-SNP's HOST_DATA for a document's bytes: their SHA-256.
func HostData(doc []byte) [32]byte { return sha256.Sum256(doc) }

// MRConfigID is TDX's MRCONFIGID for a document's bytes: their SHA-384.
func MRConfigID(doc []byte) [48]byte { return sha512.Sum384(doc) }
