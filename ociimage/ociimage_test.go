package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
)

const tinyDir = "../testdata/tiny"

func tiny(t testing.TB) *loader.Bundle {
	t.Helper()
	b, err := loader.Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func build(t testing.TB, b *loader.Bundle, ref string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Write(&buf, b, ref); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The image's bundle is the directory's: the same measurement under every
// profile, and the reference the index names.
func TestRoundTripMeasurement(t *testing.T) {
	b := tiny(t)
	img, err := Read(bytes.NewReader(build(t, b, "example.com/tiny:1")), "tiny.tar")
	if err != nil {
		t.Fatal(err)
	}
	if img.Ref != "example.com/tiny:1" {
		t.Errorf("ref %q", img.Ref)
	}
	for _, p := range []string{"debug", "staging", "production"} {
		if got, want := loader.Measure(img.Bundle, p), loader.Measure(b, p); got != want {
			t.Errorf("%s: image measures %s, directory %s", p, got, want)
		}
	}
}

// Two builds give the same bytes, whatever the files' times on disk; a
// different name gives different bytes.
func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ampoule.toml", "module.wasm"} {
		data, err := os.ReadFile(filepath.Join(tinyDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b2, err := loader.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	one, two := build(t, tiny(t), "r"), build(t, b2, "r")
	if !bytes.Equal(one, two) {
		t.Fatal("two builds of the same bundle differ")
	}
	if bytes.Equal(one, build(t, b2, "other")) {
		t.Fatal("the name does not reach the image")
	}
	tr := tar.NewReader(bytes.NewReader(one))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		names = append(names, h.Name)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("entries not sorted: %q before %q", names[i-1], names[i])
		}
	}
}

func TestWriteRefuses(t *testing.T) {
	b := tiny(t)
	if _, err := Write(io.Discard, b, ""); errcode.From(err).Code != errcode.Usage {
		t.Errorf("no name: %v", err)
	}
	bare, err := loader.FromModule(b.Module, "m.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(io.Discard, bare, "r"); errcode.From(err).Code != errcode.ManifestMissing {
		t.Errorf("bare module: %v", err)
	}
	withDir := *b
	m := *b.Manifest
	m.Dirs = []loader.Mount{{Host: "data", Guest: "/data"}}
	withDir.Manifest = &m
	if _, err := Write(io.Discard, &withDir, "r"); errcode.From(err).Code != errcode.DirInvalid {
		t.Errorf("relative dir: %v", err)
	}
}

// rewrite is the image with fn applied to its entries, in order.
func rewrite(t *testing.T, img []byte, fn func([]entry) []entry) []byte {
	t.Helper()
	var es []entry
	tr := tar.NewReader(bytes.NewReader(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		data, _ := io.ReadAll(tr)
		es = append(es, entry{*h, data})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range fn(es) {
		e.h.Size = int64(len(e.data))
		if e.h.Typeflag != tar.TypeReg {
			e.h.Size = 0
		}
		if err := tw.WriteHeader(&e.h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	return buf.Bytes()
}

type entry struct {
	h    tar.Header
	data []byte
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// A hostile image is refused with a registered code, never followed.
func TestReadHostile(t *testing.T) {
	good := build(t, tiny(t), "r")
	cases := []struct {
		name string
		fn   func([]entry) []entry
		code errcode.Code
		want string
	}{
		{"traversal", func(es []entry) []entry {
			return append(es, entry{tar.Header{Typeflag: tar.TypeReg, Name: "../evil"}, []byte("x")})
		}, errcode.BundleMalformed, "clean relative"},
		{"absolute", func(es []entry) []entry {
			return append(es, entry{tar.Header{Typeflag: tar.TypeReg, Name: "/etc/passwd"}, []byte("x")})
		}, errcode.BundleMalformed, "clean relative"},
		{"symlink", func(es []entry) []entry {
			return append(es, entry{tar.Header{Typeflag: tar.TypeSymlink, Name: "link", Linkname: "/etc/shadow"}, nil})
		}, errcode.BundleMalformed, "not a regular file"},
		{"hardlink blob", func(es []entry) []entry {
			for i := range es {
				if es[i].h.Name == "index.json" {
					es[i] = entry{tar.Header{Typeflag: tar.TypeLink, Name: "index.json", Linkname: "oci-layout"}, nil}
				}
			}
			return es
		}, errcode.BundleMalformed, "not a regular file"},
		{"duplicate", func(es []entry) []entry {
			return append(es, entry{tar.Header{Typeflag: tar.TypeReg, Name: "index.json", Mode: 0o644}, []byte(`{}`)})
		}, errcode.BundleMalformed, "appears twice"},
		{"blob changed", func(es []entry) []entry {
			for i := range es {
				if strings.HasPrefix(es[i].h.Name, "blobs/sha256/") && bytes.HasPrefix(es[i].data, []byte(`{"architecture"`)) {
					es[i].data = bytes.Replace(es[i].data, []byte(`"wasi"`), []byte(`"linux"`), 1)
				}
			}
			return es
		}, errcode.BundleMalformed, "does not match its digest"},
		{"no layout", func(es []entry) []entry {
			var out []entry
			for _, e := range es {
				if e.h.Name != "oci-layout" {
					out = append(out, e)
				}
			}
			return out
		}, errcode.BundleMalformed, "oci-layout"},
		{"wrong platform", func(es []entry) []entry {
			for i := range es {
				if es[i].h.Name == "index.json" {
					es[i].data = bytes.Replace(es[i].data, []byte(`"os":"wasi"`), []byte(`"os":"linux"`), 1)
				}
			}
			return es
		}, errcode.BundleMalformed, "0 manifests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(rewrite(t, good, c.fn)), "x.tar")
			if e := errcode.From(err); err == nil || e.Code != c.code || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %s containing %q", err, c.code, c.want)
			}
		})
	}
}

// An entry claiming more than the limit is refused from its header, before
// anything of it is read; a stream longer than the limit is cut off.
func TestReadHuge(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Size: 1 << 40})
	_, err := Read(io.MultiReader(bytes.NewReader(buf.Bytes()), zeros{}), "big.tar")
	if errcode.From(err).Code != errcode.BundleTooLarge {
		t.Fatalf("huge header: %v", err)
	}
	buf.Reset()
	tw = tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Size: maxLayerBytes})
	_, err = Read(io.MultiReader(bytes.NewReader(buf.Bytes()), io.LimitReader(zeros{}, maxLayerBytes-1)), "short.tar")
	if e := errcode.From(err); e.Code != errcode.BundleMalformed || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("truncated entry: %v", err)
	}
	if errors.Is(err, io.EOF) {
		t.Fatal("a bare EOF leaked")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// The layer is a tar bundle: a link where the module should be is refused
// by the loader, even with the digests all correct.
func TestReadLayerLink(t *testing.T) {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	toml, _ := os.ReadFile(filepath.Join(tinyDir, "ampoule.toml"))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "ampoule.toml", Size: int64(len(toml)), Mode: 0o644})
	tw.Write(toml)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "module.wasm", Linkname: "/etc/passwd"})
	tw.Close()
	img := imageWithLayer(t, layer.Bytes())
	_, err := Read(bytes.NewReader(img), "link.tar")
	if errcode.From(err).Code != errcode.BundleMalformed || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("got %v", err)
	}
}

// imageWithLayer is an image whose layer is the given bytes, digests right.
func imageWithLayer(t *testing.T, layer []byte) []byte {
	ld := describe(MediaTypeLayer, layer)
	cfg := []byte(`{"architecture":"wasm","os":"wasi","config":{},"rootfs":{"type":"layers","diff_ids":["` + ld.Digest + `"]}}`)
	cd := describe(MediaTypeConfig, cfg)
	man := []byte(`{"schemaVersion":2,"mediaType":"` + MediaTypeManifest + `","config":{"mediaType":"` + MediaTypeConfig + `","digest":"` + cd.Digest + `","size":` + itoa(len(cfg)) + `},"layers":[{"mediaType":"` + MediaTypeLayer + `","digest":"` + ld.Digest + `","size":` + itoa(len(layer)) + `}]}`)
	md := describe(MediaTypeManifest, man)
	idx := []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"` + MediaTypeManifest + `","digest":"` + md.Digest + `","size":` + itoa(len(man)) + `,"platform":{"architecture":"wasm","os":"wasi"}}]}`)
	out, err := tarOf([]file{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", idx},
		{"blobs/sha256/" + sha(layer), layer}, {"blobs/sha256/" + sha(cfg), cfg}, {"blobs/sha256/" + sha(man), man}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func FuzzRead(f *testing.F) {
	f.Add(build(f, tiny(f), "r"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Read(bytes.NewReader(data), "fuzz.tar")
		if err != nil {
			if e := errcode.From(err); !e.Code.Registered() {
				t.Fatalf("unregistered error %v", err)
			}
			return
		}
		if img.Bundle == nil || img.Bundle.Manifest == nil {
			t.Fatal("no bundle and no error")
		}
		// What reads back writes again, and reads back the same.
		var buf bytes.Buffer
		if _, err := Write(&buf, img.Bundle, "x"); err != nil && errcode.From(err).Code != errcode.DirInvalid {
			t.Fatalf("rewrite: %v", err)
		}
	})
}
