package broker

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ampoule-run/ampoule/internal/resource"
)

// bucketResources holds the stored resources by path, each value sealed
// under the resource key (see sealResource).
var bucketResources = []byte("resources")

// MaxResourceBytes bounds a stored resource's value: a [secrets] table's
// sixteen of them, wrapped and encoded, stay within an answer's MaxBody.
const MaxResourceBytes = 64 << 10

// legacySealingKey is the name the sealing key was asked for by before it
// was a resource path; a broker still answers to it.
const legacySealingKey = "sealing-key"

// Errors of the resource store and of a resource's release, each wrapped
// with detail.
var (
	// ErrResourcePath: not a path the store holds resources under.
	ErrResourcePath = errors.New("not a stored resource's path")
	// ErrResourceValue: a value empty or beyond MaxResourceBytes.
	ErrResourceValue = errors.New("not a resource's value")
	// ErrNoResource: the store holds nothing at the path.
	ErrNoResource = errors.New("no such resource")
	// ErrNotGranted: the policy grants the resource to no run like the
	// one asking, or the broker holds none at its path; a client's
	// refusal wraps it too.
	ErrNotGranted = errors.New("the resource is not released to this run")
)

// Claims are what the broker knows of a run whose evidence its policy
// affirmed: what a resource's release is decided from, whichever protocol
// carried the evidence.
type Claims struct {
	// Measurement is the run's bundle measurement.
	Measurement [48]byte
	// Profile and Backend are the run's profile and evidence kind
	// ("sev-snp", "tdx", "sim").
	Profile, Backend string
	// Class is the evidence's class (attest.Result.Class): a sealing key
	// differs for evidence a host could make or read.
	Class string
}

// ResourceInfo is what the store says of a resource without its value.
type ResourceInfo struct {
	Path    string    `json:"path"`
	Size    int       `json:"size"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// storedResource is a resource as the database holds it.
type storedResource struct {
	Size    int       `json:"size"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Nonce   []byte    `json:"nonce"`
	Sealed  []byte    `json:"sealed"`
}

// resourceAAD binds a sealed value to its path: a value copied to another
// path in the database does not open there.
func resourceAAD(path string) []byte {
	return []byte("ampoule/broker/resource/v1\x00" + path)
}

func (s *Server) resourceAEAD() (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, s.master, nil, "ampoule/broker/resource-key/v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// checkStorePath refuses what no resource may be stored under: a path
// that is not REPO/TYPE/TAG, and the broker's own repository, whose one
// resource (the sealing key) is derived.
func checkStorePath(path string) error {
	p, err := resource.Parse(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrResourcePath, err)
	}
	if p.Repo == "ampoule" {
		return fmt.Errorf("%w: %s is in the broker's own repository (its sealing key, %s, is derived, never stored)", ErrResourcePath, path, resource.SealingKey)
	}
	return nil
}

// PutResource stores value at path, replacing what was there, sealed with
// AES-256-GCM under a key derived from the broker's master key, the path
// as associated data. The value is never written in the clear.
func (s *Server) PutResource(path string, value []byte) error {
	if err := checkStorePath(path); err != nil {
		return err
	}
	if len(value) == 0 || len(value) > MaxResourceBytes {
		return fmt.Errorf("%w: %d bytes; a resource is 1 to %d", ErrResourceValue, len(value), MaxResourceBytes)
	}
	aead, err := s.resourceAEAD()
	if err != nil {
		return err
	}
	now := s.Now().UTC()
	rec := storedResource{Size: len(value), Created: now, Updated: now, Nonce: make([]byte, aead.NonceSize())}
	rand.Read(rec.Nonce)
	rec.Sealed = aead.Seal(nil, rec.Nonce, value, resourceAAD(path))
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketResources)
		if err != nil {
			return err
		}
		if old := b.Get([]byte(path)); old != nil {
			var prev storedResource
			if json.Unmarshal(old, &prev) == nil {
				rec.Created = prev.Created
			}
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put([]byte(path), data)
	})
}

// RemoveResource removes the resource at path; ErrNoResource if there is
// none.
func (s *Server) RemoveResource(path string) error {
	if err := checkStorePath(path); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketResources)
		if b == nil || b.Get([]byte(path)) == nil {
			return fmt.Errorf("%w: %s", ErrNoResource, path)
		}
		return b.Delete([]byte(path))
	})
}

// Resources lists the stored resources by path: sizes and times, never
// values.
func (s *Server) Resources() ([]ResourceInfo, error) {
	var out []ResourceInfo
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketResources)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var rec storedResource
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("the resource %s is damaged", k)
			}
			out = append(out, ResourceInfo{Path: string(k), Size: rec.Size, Created: rec.Created, Updated: rec.Updated})
			return nil
		})
	})
	return out, err
}

// storedValue opens the value stored at path.
func (s *Server) storedValue(path string) ([]byte, error) {
	var raw []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketResources); b != nil {
			raw = bytes.Clone(b.Get([]byte(path)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoResource, path)
	}
	return s.openStored(path, raw)
}

// openStored decodes a record of the store and opens its value, which must
// have been sealed for path under the broker's key.
func (s *Server) openStored(path string, raw []byte) ([]byte, error) {
	var rec storedResource
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("the resource %s is damaged", path)
	}
	aead, err := s.resourceAEAD()
	if err != nil {
		return nil, err
	}
	if len(rec.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("the resource %s is damaged", path)
	}
	value, err := aead.Open(nil, rec.Nonce, rec.Sealed, resourceAAD(path))
	if err != nil || len(value) != rec.Size {
		return nil, fmt.Errorf("the resource %s does not open under the broker's key: it was altered or moved", path)
	}
	return value, nil
}

// resource is the one decision on releasing the resource at path to a run
// the policy affirmed with claims c, whichever protocol asks: the sealing
// key is derived for c's measurement and class; a stored resource is
// released only if the policy grants it to c's measurement, profile and
// backend (a path not granted is refused before the store is read, so the
// answer does not say whether it holds anything there). An error's text
// goes to the answer's reasons and the audit trail.
func (s *Server) resource(path string, c Claims) ([]byte, error) {
	policy := s.policy.Load()
	if policy == nil {
		return nil, errors.New("the broker has no policy")
	}
	if path == resource.SealingKey || path == legacySealingKey {
		return s.sealingKey(policy, c.Measurement, c.Class)
	}
	if err := checkStorePath(path); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotGranted, err)
	}
	if !policy.Granted(path, c.Measurement, c.Profile, c.Backend, c.Class) {
		return nil, fmt.Errorf("%w: %s is granted to no run of this measurement under profile %s on backend %s with %s evidence", ErrNotGranted, path, c.Profile, c.Backend, c.Class)
	}
	value, err := s.storedValue(path)
	if errors.Is(err, ErrNoResource) {
		return nil, fmt.Errorf("%w: %s is granted, and the broker holds nothing there", ErrNotGranted, path)
	}
	return value, err
}

// askable reports whether a release request may name name: the sealing
// key (by its path or its former name) or a resource path.
func askable(name string) bool {
	return name == legacySealingKey || resource.Valid(name)
}

// sortedNames is names sorted, without repeats.
func sortedNames(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}
