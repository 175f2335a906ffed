// Package resource is the one definition of a key broker resource's path,
// as Trustee's KBS names its resources (GET /kbs/v0/resource/REPO/TYPE/TAG):
// three segments, each 1 to MaxSegment bytes of A-Z, a-z, 0-9, '.', '_'
// and '-', none of them "." or "..". The manifest's [secrets], the broker's
// store and its policy's grants all read paths through Parse, so a path one
// of them accepts is a path every other accepts.
package resource

import (
	"errors"
	"fmt"
	"strings"
)

// MaxSegment bounds one segment of a path; MaxPath the whole path.
const (
	MaxSegment = 64
	MaxPath    = 3*MaxSegment + 2
)

// SealingKey is the resource path of a run's sealing key (a manifest's
// [sealed] key = "broker"): the broker derives it for the run's measurement
// and evidence class instead of storing it, and releases it to any
// evidence its policy affirms.
const SealingKey = "ampoule/sealing/key"

// ErrPath wraps every reason a path is not a resource path.
var ErrPath = errors.New("not a resource path")

// Path is a parsed resource path.
type Path struct {
	Repo, Type, Tag string
}

// String is the path as REPO/TYPE/TAG.
func (p Path) String() string { return p.Repo + "/" + p.Type + "/" + p.Tag }

// Parse reads s as REPO/TYPE/TAG; every error wraps ErrPath and says what
// is wrong without repeating more of s than MaxPath bytes.
func Parse(s string) (Path, error) {
	if len(s) > MaxPath {
		return Path{}, fmt.Errorf("%w: %d bytes, more than the %d a path may have", ErrPath, len(s), MaxPath)
	}
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return Path{}, fmt.Errorf("%w: %q has %d segments, not three (REPO/TYPE/TAG, such as default/tenant/api-key)", ErrPath, s, len(parts))
	}
	for i, seg := range parts {
		if err := segment(seg); err != nil {
			return Path{}, fmt.Errorf("%w: %q: its %s %v", ErrPath, s, [3]string{"repository", "type", "tag"}[i], err)
		}
	}
	return Path{parts[0], parts[1], parts[2]}, nil
}

// Valid reports whether s is a resource path.
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

func segment(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > MaxSegment:
		return fmt.Errorf("is %d bytes, more than %d", len(s), MaxSegment)
	case s == "." || s == "..":
		return fmt.Errorf("is %q", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("has the byte %q; a segment is A-Z, a-z, 0-9, '.', '_' and '-'", c)
		}
	}
	return nil
}
