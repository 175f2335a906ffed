package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
)

// Limits of what Read takes: the layer may be as large as a tar bundle, the
// JSON documents are small, and an image has few entries.
const (
	maxLayerBytes = loader.MaxModuleBytes + loader.MaxManifestBytes + 64<<10
	maxJSONBytes  = 64 << 10
	maxEntries    = 64
	maxImageBytes = maxLayerBytes + 16*maxJSONBytes + maxEntries*1024
)

// digestRE is compiled when first used: launch imports this package, and
// every process of it, a runner too, would compile it at start-up.
var digestRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) })

// Image is what Read found: the reference the index names and the bundle
// its wasi/wasm manifest's layer holds.
type Image struct {
	Ref    string
	Bundle *loader.Bundle
}

// Read reads an OCI image layout tar (Write's, or any with the same shape)
// and returns the bundle its one wasi/wasm manifest carries. It takes only
// regular files and directories with clean relative names, each once, within
// size limits; every blob it uses must match its digest and size, the
// config's platform and diff_id must match, and the layer is read as a tar
// bundle (loader.FromTar). Anything else is refused with a registered code
// (E1004 bundle-malformed, E1005 bundle-too-large), never followed.
func Read(r io.Reader, source string) (*Image, error) {
	files, err := entries(r, source)
	if err != nil {
		return nil, err
	}
	if lay, ok := files["oci-layout"]; !ok || !validLayout(lay) {
		return nil, errorf(source, "no oci-layout file of version 1.0.0: not an OCI image layout")
	}
	var idx index
	if err := decode(files, "index.json", &idx); err != nil {
		return nil, errorf(source, "index.json: %v", err)
	}
	desc, err := pick(source, idx)
	if err != nil {
		return nil, err
	}
	var man manifest
	if err := blob(files, desc, MediaTypeManifest, &man); err != nil {
		return nil, errorf(source, "the manifest: %v", err)
	}
	if len(man.Layers) != 1 || man.Layers[0].MediaType != MediaTypeLayer {
		return nil, errorf(source, "the manifest has %d layers; an ampoule image has one, of type %s", len(man.Layers), MediaTypeLayer)
	}
	var cfg imageConfig
	if err := blob(files, man.Config, MediaTypeConfig, &cfg); err != nil {
		return nil, errorf(source, "the config: %v", err)
	}
	if cfg.OS != OS || cfg.Architecture != Architecture {
		return nil, errorf(source, "the config's platform is %s/%s, not %s/%s", cfg.OS, cfg.Architecture, OS, Architecture)
	}
	layer, err := blobBytes(files, man.Layers[0])
	if err != nil {
		return nil, errorf(source, "the layer: %v", err)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != man.Layers[0].Digest {
		return nil, errorf(source, "the config's diff_ids do not name the layer")
	}
	b, err := loader.FromTar(bytes.NewReader(layer), source)
	if err != nil {
		return nil, err
	}
	return &Image{Ref: desc.Annotations[AnnotationRefName], Bundle: b}, nil
}

// entries reads the outer tar: regular files by clean name, directories
// checked and dropped.
func entries(r io.Reader, source string) (map[string][]byte, error) {
	lr := &io.LimitedReader{R: r, N: maxImageBytes + 1}
	tr := tar.NewReader(lr)
	files := map[string][]byte{}
	seen := map[string]bool{}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if lr.N <= 0 {
			return nil, errcode.Errorf(errcode.BundleTooLarge, "%s is larger than %d bytes", source, maxImageBytes)
		}
		if err != nil {
			return nil, errorf(source, "not a readable tar archive: %v", err)
		}
		if n >= maxEntries {
			return nil, errorf(source, "more than %d entries", maxEntries)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/")
		}
		if name == "" || path.Clean(name) != name || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return nil, errorf(source, "entry %q is not a clean relative name", h.Name)
		}
		if seen[name] {
			return nil, errorf(source, "%s appears twice", name)
		}
		seen[name] = true
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, errorf(source, "%s is not a regular file or a directory (type %q)", name, h.Typeflag)
		}
		if h.Size < 0 || h.Size > maxLayerBytes {
			return nil, errcode.Errorf(errcode.BundleTooLarge, "%s: %s is %d bytes, more than the %d allowed", source, name, h.Size, maxLayerBytes)
		}
		data, err := io.ReadAll(tr)
		if lr.N <= 0 {
			return nil, errcode.Errorf(errcode.BundleTooLarge, "%s is larger than %d bytes", source, maxImageBytes)
		}
		if err != nil {
			return nil, errorf(source, "%s is truncated: %v", name, err)
		}
		files[name] = data
	}
}

func validLayout(b []byte) bool {
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	return len(b) <= maxJSONBytes && json.Unmarshal(b, &l) == nil && l.Version == "1.0.0"
}

// pick is the index's one manifest for wasi/wasm.
func pick(source string, idx index) (Descriptor, error) {
	if idx.SchemaVersion != 2 {
		return Descriptor{}, errorf(source, "index.json has schemaVersion %d, not 2", idx.SchemaVersion)
	}
	var found []Descriptor
	for _, d := range idx.Manifests {
		if d.MediaType == MediaTypeManifest && d.Platform != nil && d.Platform.OS == OS && d.Platform.Architecture == Architecture {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		return Descriptor{}, errorf(source, "index.json lists %d manifests for %s/%s; an ampoule image has one", len(found), OS, Architecture)
	}
	return found[0], nil
}

func decode(files map[string][]byte, name string, v any) error {
	b, ok := files[name]
	if !ok {
		return errors.New("missing")
	}
	if len(b) > maxJSONBytes {
		return errors.New("too large")
	}
	return json.Unmarshal(b, v)
}

// blob decodes the JSON blob d names, of media type mediaType.
func blob(files map[string][]byte, d Descriptor, mediaType string, v any) error {
	if d.MediaType != mediaType {
		return errors.New("media type " + d.MediaType + ", not " + mediaType)
	}
	if d.Size > maxJSONBytes {
		return errors.New("too large")
	}
	b, err := blobBytes(files, d)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// blobBytes is the blob d names, once it matches d's digest and size.
func blobBytes(files map[string][]byte, d Descriptor) ([]byte, error) {
	if !digestRE().MatchString(d.Digest) {
		return nil, errors.New("digest " + d.Digest + " is not a sha256 digest")
	}
	b, ok := files[blobPath(d.Digest)]
	if !ok {
		return nil, errors.New("blob " + d.Digest + " is missing")
	}
	sum := sha256.Sum256(b)
	if int64(len(b)) != d.Size || "sha256:"+hex.EncodeToString(sum[:]) != d.Digest {
		return nil, errors.New("blob " + d.Digest + " does not match its digest and size")
	}
	return b, nil
}
