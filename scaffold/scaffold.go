// Package scaffold makes a new bundle: a commented manifest the loader
// accepts, a Go workload that builds for GOOS=wasip1 with its go.mod, a
// Makefile and a .gitignore. The files' text is embedded (files/*.tmpl),
// with NAME standing for the bundle's name.
package scaffold

import (
	"embed"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/logging"
)

//go:embed files/*.tmpl
var templates embed.FS

// Options are what a new bundle may be given beyond its name.
type Options struct {
	// LogRecipient is the tenant's log key (alog1...), written into the
	// manifest; empty: the manifest says how to make one instead, as a key
	// the tenant does not hold would seal the log to nobody.
	LogRecipient string
}

// File is one file of a new bundle: its name in the bundle's directory and
// its contents.
type File struct {
	Name string
	Body string
}

// recipientPlaceholder is the manifest template's line for log_recipient.
const recipientPlaceholder = "@LOG_RECIPIENT@\n"

// Files are the files of a new bundle named name, the manifest first. An
// invalid name or log recipient is a usage error (E1001); a manifest the
// loader refuses is the launcher's own failure (E5001).
func Files(name string, o Options) ([]File, error) {
	if !loader.ValidName(name) {
		return nil, errcode.Errorf(errcode.Usage, "init: %q is not a bundle name", name).
			WithHint("a bundle's name is 1-64 of a-z 0-9 . _ -, starting with a letter or digit: launch init my-app")
	}
	if o.LogRecipient != "" {
		if _, err := logging.ParseRecipient(o.LogRecipient); err != nil {
			return nil, errcode.Errorf(errcode.Usage, "init: --log-recipient: %v", err).
				WithHint("pass what 'launch keygen -o FILE' printed: alog1 and 64 hex digits")
		}
	}
	t, err := readTemplates()
	if err != nil {
		return nil, err
	}
	r := strings.NewReplacer("NAME", name)
	recipient := t["recipient-howto"]
	if o.LogRecipient != "" {
		recipient = "log_recipient = \"" + o.LogRecipient + "\"\n"
	}
	manifest := strings.Replace(r.Replace(t["ampoule.toml"]), recipientPlaceholder, recipient, 1)
	// The manifest made is one the loader accepts: a template that is not
	// is the launcher's own failure, caught before anything is written.
	if _, err := loader.ParseManifest("ampoule.toml", []byte(manifest)); err != nil {
		return nil, errcode.Errorf(errcode.Internal, "init: the manifest made is refused: %w", err)
	}
	return []File{
		{"ampoule.toml", manifest},
		{"main.go", r.Replace(t["main.go"])},
		{"go.mod", GoMod(name)},
		{"Makefile", t["Makefile"]},
		{".gitignore", t["gitignore"]},
	}, nil
}

// readTemplates reads the embedded files/NAME.tmpl, by NAME; one missing
// is the launcher's own failure (E5001).
func readTemplates() (map[string]string, error) {
	t := map[string]string{}
	for _, name := range []string{"ampoule.toml", "recipient-howto", "main.go", "Makefile", "gitignore"} {
		b, err := templates.ReadFile("files/" + name + ".tmpl")
		if err != nil {
			return nil, errcode.Errorf(errcode.Internal, "init: the template %s: %v", name, err)
		}
		t[name] = string(b)
	}
	return t, nil
}

// Write writes a new bundle named name into dir, which must be missing or
// an empty directory (E1040 otherwise). Nothing is written when a check
// fails; a failure while writing leaves what was written, in a directory
// that was empty. A file is never overwritten.
func Write(dir, name string, o Options) error {
	files, err := Files(name, o)
	if err != nil {
		return err
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errcode.Errorf(errcode.Usage, "init: %v", err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return errcode.Errorf(errcode.Usage, "init: %v", err)
		}
		_, werr := io.WriteString(out, f.Body)
		if cerr := out.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return errcode.Errorf(errcode.Usage, "init: writing %s: %v", path, werr)
		}
	}
	return nil
}

// emptyDir checks that dir is missing or an empty directory.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			return errcode.Errorf(errcode.InitDirNotEmpty, "init: %s exists and is not a directory", dir).
				WithHint("choose another NAME: launch init makes a new bundle's directory")
		}
		return errcode.Errorf(errcode.Usage, "init: %v", err)
	case len(entries) > 0:
		return errcode.Errorf(errcode.InitDirNotEmpty, "init: %s is not empty (it holds %s)", dir, entries[0].Name()).
			WithHint("choose another NAME, or empty the directory: launch init never overwrites a file")
	}
	return nil
}

// GoMod is the workload's go.mod: its module path is the bundle's name
// where the go command takes that as one, else "workload" (a name ending
// in a dot, or one Windows reserves, as aux and com1 are, is no module
// path), so that the workload always builds.
func GoMod(name string) string {
	path := name
	short, _, _ := strings.Cut(name, ".")
	if strings.HasSuffix(name, ".") || windowsReserved[strings.ToLower(short)] {
		path = "workload"
	}
	return "module " + path + "\n\ngo 1.26\n"
}

// windowsReserved are the names the go command refuses as a path element.
var windowsReserved = map[string]bool{"con": true, "prn": true, "aux": true, "nul": true,
	"com1": true, "com2": true, "com3": true, "com4": true, "com5": true, "com6": true, "com7": true, "com8": true, "com9": true,
	"lpt1": true, "lpt2": true, "lpt3": true, "lpt4": true, "lpt5": true, "lpt6": true, "lpt7": true, "lpt8": true, "lpt9": true}
