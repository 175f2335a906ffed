// Command bigguest is a large module for the tests that bound what a run
// costs by the size of its module: it links and calls much of the
// standard library (about 17 MB for GOOS=wasip1), prints one line and
// exits. With the argument "wait" it first reads its stdin to the end, so
// that a test decides how long it runs.
package main

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"go/ast"
	"go/format"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	htemplate "html/template"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"text/template"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "wait" {
		io.Copy(io.Discard, os.Stdin)
	}
	var buf bytes.Buffer
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", "package x\nfunc F() int { return 1 }\n", 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bigguest:", err)
		os.Exit(1)
	}
	conf := types.Config{Importer: importer.Default(), Error: func(error) {}}
	conf.Check("x", fset, []*ast.File{f}, nil)
	format.Node(&buf, fset, f)
	json.NewEncoder(&buf).Encode(map[string]any{"a": 1})
	xml.NewEncoder(&buf).Encode(struct{ A int }{1})
	template.Must(template.New("t").Parse("{{.}}")).Execute(&buf, 1)
	htemplate.Must(htemplate.New("t").Parse("{{.}}")).Execute(&buf, 1)
	regexp.MustCompile(`a+b`).MatchString("aab")
	zip.NewWriter(&buf).Close()
	gzip.NewWriter(&buf).Close()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	png.Encode(&buf, img)
	jpeg.Encode(&buf, img, nil)
	e := new(big.Int).Exp(big.NewInt(3), big.NewInt(100), nil)
	_ = tls.Config{}
	rec := httptest.NewRecorder()
	http.NotFound(rec, httptest.NewRequest("GET", "/", nil))
	fmt.Printf("bigguest: %d digits, status %d\n", len(e.String()), rec.Code)
}
