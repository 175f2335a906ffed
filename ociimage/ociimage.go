// Package ociimage writes a bundle as an OCI image layout and reads one
// back, so that a bundle travels where container images do (ctr image
// import, a registry) without a registry or Docker to make it.
//
// An image holds one manifest for the platform wasi/wasm, whose one layer
// is an uncompressed tar of exactly ampoule.toml and the module it names:
// unpacked by a snapshotter it is a bundle directory, and read back by
// Read it is the bundle it was built from, with the same measurement.
// Write's bytes depend on the bundle and the reference alone (entries
// sorted, times, owners and modes fixed). Nothing in the image but the
// layer's two files is measured, so the profile, the backend and the log
// sink are never taken from it.
package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
)

// Media types and annotations of the OCI image specification (v1.1) and
// of containerd that an image uses.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"
	// AnnotationRefName is the OCI reference name of an index entry.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationImageName is the name containerd's import gives the image.
	AnnotationImageName = "io.containerd.image.name"
	// OS and Architecture are the image's platform.
	OS           = "wasi"
	Architecture = "wasm"
)

// epoch is every entry's modification time: the bytes must not depend on
// when the image was built.
var epoch = time.Unix(0, 0).UTC()

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is a descriptor's platform.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []Descriptor `json:"manifests"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

type imageConfig struct {
	Architecture string        `json:"architecture"`
	OS           string        `json:"os"`
	Config       runConfig     `json:"config"`
	RootFS       rootFS        `json:"rootfs"`
	History      []interface{} `json:"history,omitempty"`
}

type runConfig struct {
	Entrypoint []string `json:"Entrypoint,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// Write writes b as an OCI image layout tar named ref to w and returns the
// digest of its image manifest. A manifest
// mounting a relative host directory is refused (E1013 dir-invalid): the image holds
// ampoule.toml and the module alone, so that directory would not travel
// with it. A bundle with a generated manifest (a bare module) is refused
// too: an image carries the manifest it is measured with.
func Write(w io.Writer, b *loader.Bundle, ref string) (string, error) {
	if ref == "" {
		return "", errcode.Errorf(errcode.Usage, "an image needs a name").WithHint("pass --name REF, for example --name example.com/hello:1.0").Host()
	}
	if b.Generated || b.ManifestBytes == nil {
		return "", errcode.Errorf(errcode.ManifestMissing, "%s has no %s: an image carries the manifest it is measured with", b.Source, loader.ManifestName)
	}
	for _, d := range b.Manifest.Dirs {
		if !path.IsAbs(d.Host) {
			return "", errcode.Errorf(errcode.DirInvalid, "%s mounts %s, a directory beside the bundle, which an image does not carry", b.Source, d).
				WithHint("an image holds ampoule.toml and the module only; mount an absolute host path")
		}
	}
	layer, err := tarOf([]file{{loader.ManifestName, b.ManifestBytes}, {b.Manifest.Module, b.Module}})
	if err != nil {
		return "", err
	}
	layerDesc := describe(MediaTypeLayer, layer)
	cfg, _ := json.Marshal(imageConfig{Architecture: Architecture, OS: OS,
		Config: runConfig{Entrypoint: []string{"/" + b.Manifest.Module}},
		RootFS: rootFS{Type: "layers", DiffIDs: []string{layerDesc.Digest}}})
	cfgDesc := describe(MediaTypeConfig, cfg)
	man, _ := json.Marshal(manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: cfgDesc, Layers: []Descriptor{layerDesc}})
	manDesc := describe(MediaTypeManifest, man)
	manDesc.Platform = &Platform{Architecture: Architecture, OS: OS}
	manDesc.Annotations = map[string]string{AnnotationRefName: ref, AnnotationImageName: ref}
	idx, _ := json.Marshal(index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []Descriptor{manDesc}})
	files := []file{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", idx},
		{blobPath(layerDesc.Digest), layer},
		{blobPath(cfgDesc.Digest), cfg},
		{blobPath(manDesc.Digest), man},
	}
	out, err := tarOf(files, "blobs", "blobs/sha256")
	if err != nil {
		return "", err
	}
	if _, err := w.Write(out); err != nil {
		return "", errcode.Errorf(errcode.Internal, "writing the image: %v", err).Host()
	}
	return manDesc.Digest, nil
}

type file struct {
	name string
	data []byte
}

func describe(mediaType string, data []byte) Descriptor {
	sum := sha256.Sum256(data)
	return Descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
}

func blobPath(digest string) string { return "blobs/sha256/" + digest[len("sha256:"):] }

// tarOf is a tar of the directories and files, sorted by name, owned by
// root, with fixed modes and times: the same input gives the same bytes.
func tarOf(files []file, dirs ...string) ([]byte, error) {
	type entry struct {
		h    tar.Header
		data []byte
	}
	var es []entry
	for _, d := range dirs {
		es = append(es, entry{h: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}})
	}
	for _, f := range files {
		es = append(es, entry{h: tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data))}, data: f.data})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].h.Name < es[j].h.Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.h
		h.ModTime, h.Format, h.Uname, h.Gname = epoch, tar.FormatUSTAR, "root", "root"
		if err := tw.WriteHeader(&h); err != nil {
			return nil, errcode.Errorf(errcode.Internal, "writing %s into the image: %v", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, errcode.Errorf(errcode.Internal, "writing %s into the image: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, errcode.Errorf(errcode.Internal, "closing the image: %v", err)
	}
	return buf.Bytes(), nil
}

// errorf is a malformed image.
func errorf(source, format string, args ...any) *errcode.Error {
	return errcode.Errorf(errcode.BundleMalformed, "%s: %s", source, fmt.Sprintf(format, args...)).
		WithHint("rebuild the image with: launch image build BUNDLE -o image.tar --name REF")
}

// Build reads the bundle at bundlePath (a directory or a .tar bundle) and
// writes its image, named ref, to the new file out (an existing file is
// not replaced, a usage error); it
// returns the image manifest's digest. The file appears whole or not at
// all.
func Build(bundlePath, out, ref string) (string, error) {
	b, err := loader.Open(bundlePath)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	digest, err := Write(&buf, b, ref)
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".image-*.tar")
	if err != nil {
		return "", errcode.Errorf(errcode.Usage, "%v", err).WithHint("-o names a file in a directory that exists and you may write").Host()
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return "", errcode.Errorf(errcode.Internal, "writing %s: %v", out, err).Host()
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", errcode.Errorf(errcode.Internal, "writing %s: %v", out, err).Host()
	}
	if err := tmp.Close(); err != nil {
		return "", errcode.Errorf(errcode.Internal, "writing %s: %v", out, err).Host()
	}
	// A link, not a rename: an existing out is refused, never replaced.
	if err := os.Link(tmp.Name(), out); err != nil {
		var le *os.LinkError
		if errors.As(err, &le) {
			err = le.Err
		}
		return "", errcode.Errorf(errcode.Usage, "%s: %v", out, err).WithHint("-o names a new file; remove the old one first").Host()
	}
	return digest, nil
}
