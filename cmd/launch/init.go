package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/logging"
)

func cmdInit(fs *flag.FlagSet) action {
	recipient := fs.String("log-recipient", "", "the tenant's log key (alog1..., from 'launch keygen'), written into the manifest")
	quiet := quietFlag(fs)
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		e.quiet = *quiet
		dir := in.Pos[0]
		if err := scaffold(dir, *recipient); err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.info(e.stdout), "made the bundle %s in %s; build and run it with:\n  cd %s && GOOS=wasip1 GOARCH=wasm go build -o module.wasm . && launch run .\n",
			filepath.Base(filepath.Clean(dir)), dir, dir)
		return 0
	}
}

// scaffold writes a new bundle into dir, which must be missing or empty.
// Nothing is written when a check fails; a failure while writing leaves
// what was written, in a directory that was empty.
func scaffold(dir, recipient string) error {
	name := filepath.Base(filepath.Clean(dir))
	if !loader.ValidName(name) {
		return errcode.Errorf(errcode.Usage, "init: %q is not a bundle name", name).
			WithHint("a bundle's name is 1-64 of a-z 0-9 . _ -, starting with a letter or digit: launch init my-app")
	}
	if recipient != "" {
		if _, err := logging.ParseRecipient(recipient); err != nil {
			return errcode.Errorf(errcode.Usage, "init: --log-recipient: %v", err).
				WithHint("pass what 'launch keygen -o FILE' printed: alog1 and 64 hex digits")
		}
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	files := scaffoldFiles(name, recipient)
	// The manifest made is one the loader accepts: a template that is not
	// is the launcher's own failure, caught before anything is written.
	if _, err := loader.ParseManifest("ampoule.toml", []byte(files[0].body)); err != nil {
		return errcode.Errorf(errcode.Internal, "init: the manifest made is refused: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errcode.Errorf(errcode.Usage, "init: %v", err)
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return errcode.Errorf(errcode.Usage, "init: %v", err)
		}
		_, werr := io.WriteString(out, f.body)
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

type scaffoldFile struct{ name, body string }

// scaffoldFiles are a new bundle's files; the manifest comes first.
func scaffoldFiles(name, recipient string) []scaffoldFile {
	r := strings.NewReplacer("NAME", name)
	manifest := r.Replace(manifestTemplate)
	if recipient != "" {
		manifest = strings.Replace(manifest, recipientPlaceholder, "log_recipient = \""+recipient+"\"\n", 1)
	} else {
		manifest = strings.Replace(manifest, recipientPlaceholder, recipientHowTo, 1)
	}
	return []scaffoldFile{
		{"ampoule.toml", manifest},
		{"main.go", r.Replace(mainTemplate)},
		{"go.mod", goMod(name)},
		{"Makefile", makefileTemplate},
		{".gitignore", gitignoreTemplate},
	}
}

const recipientPlaceholder = "@LOG_RECIPIENT@\n"

// recipientHowTo is the manifest's note on log_recipient when init was given
// none: no key is written, as one the tenant does not hold would seal the
// log to nobody.
const recipientHowTo = `# log_recipient: not set yet. Make a key and put what it prints here, on a
# line of its own above the first [table]:
#   launch keygen -o tenant.key
#   log_recipient = "alog1..."
`

// manifestTemplate is the new bundle's ampoule.toml. Every line "# key = ..."
// is an optional key, valid as it is once uncommented (a test uncomments
// each one and parses the manifest).
const manifestTemplate = `# The bundle's manifest: what runs, and how. Its every value is measured,
# with the module and the profile (launch measure shows the measurement).
# Comments and layout are not. The keys are in README.md, "Manifest".

# name: the bundle's name, 1-64 of a-z 0-9 . _ - (required).
name = "NAME"

# version: the bundle's version, any text; in the log and the broker's audit.
version = "0.1.0"

# module: the WebAssembly module, a file at the bundle's top level
# (default module.wasm).
# module = "module.wasm"

# args: the workload's arguments after argv[0], which is the name.
args = ["world"]

# profiles: where the bundle may run (required): debug (a developer's
# machine: full errors, output to the terminal), staging and production
# (output sealed to log_recipient, the host sees only error codes).
profiles = ["debug", "staging", "production"]

# dirs: host directories the workload sees, HOST::GUEST read-only or
# HOST::GUEST::rw writable; a relative HOST is inside the bundle's directory
# and must exist there when the bundle runs.
# dirs = ["data::/data"]

# stdin: "host" lets the workload read launch's stdin, under every profile;
# "none" gives it end of file. Unsaid: the host's under debug only.
# stdin = "none"

# log_recipient: the tenant's log key, from 'launch keygen'. Under staging
# and production everything the workload writes is sealed to it; without one
# its output is withheld.
@LOG_RECIPIENT@
# [env]: the workload's whole environment (nothing of the host's reaches it).
[env]
GREETING = "Hello"
# LANG = "C.UTF-8"

# [limits]: each optional, the defaults shown; 0 is refused (no "unlimited").
[limits]
# memory: linear memory, "64MiB", "1GiB" or bytes, rounded up to 64 KiB pages.
memory = "64MiB"
# wall_time: how long the workload may run, a Go duration: "30s", "1h30m".
wall_time = "10s"
# output: stdout and stderr together.
# output = "64MiB"
# open_files: files and directories open at once.
# open_files = 256
# file_output: what the workload makes in files, in all.
# file_output = "1GiB"

# A sealed mount (files kept on the host's disk only encrypted) and the
# tenant's key broker are in README.md: "Sealed storage", "Key broker".
`

const mainTemplate = `// Command NAME is an Ampoule workload: a WASI preview 1 program, built with
//
//	GOOS=wasip1 GOARCH=wasm go build -o module.wasm .
//
// It reads its arguments and environment, as the manifest gives them, and
// writes to stdout, which under debug reaches the terminal and under
// staging and production the tenant's encrypted log.
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "Hello"
	}
	who := "world"
	if len(os.Args) > 1 {
		who = strings.Join(os.Args[1:], " ")
	}
	fmt.Printf("%s, %s, from NAME!\n", greeting, who)
}
`

// goMod is the workload's go.mod: its module path is the bundle's name
// where the go command takes that as one, else "workload" (a name ending
// in a dot, or one Windows reserves, as aux and com1 are, is no module
// path), so that the workload always builds.
func goMod(name string) string {
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

const makefileTemplate = `# 'make' builds the module; 'make run' runs the bundle under debug.
GO ?= go

module.wasm: main.go go.mod
	GOOS=wasip1 GOARCH=wasm $(GO) build -o module.wasm .

run: module.wasm
	launch run .

.PHONY: run
`

const gitignoreTemplate = `# What building and running the bundle leaves.
module.wasm
*.log
tenant.key
`
