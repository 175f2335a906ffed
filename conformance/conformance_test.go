// Package conformance drives WASI preview 1 programs through plain wazero
// (its own CLI, as Go's wasip1 port runs it) and through 'launch run' under
// the debug profile, and requires Ampoule to pass everything wazero passes.
//
// Two suites:
//   - TestGoWASIConformance: the Go project's own GOOS=wasip1 standard-library
//     tests, an external suite exercising files, directories, clocks, args,
//     env and stdio through WASI. Every test that passes under plain wazero
//     must pass under launch.
//   - TestProbe*: Ampoule's own checks of args, env, preopens, exit codes and
//     stdin/stdout/stderr, each asserting the expected output and equality
//     with plain wazero.
package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// stdlibPackages are the Go standard-library packages whose wasip1 tests make
// up the external suite: the ones that reach WASI (files, directories, time,
// processes' args and env, stdio) plus a few heavy pure-compute ones.
// The list is bounded by make test's time budget (the suite takes about two
// minutes on two cores); add packages here to widen it.
var stdlibPackages = []string{
	"os", "io/fs", "io/ioutil", "path/filepath", "syscall", "time",
	"testing/fstest", "io", "bufio", "encoding/json", "crypto/sha256",
}

// confinedPackages are run a third time, through 'launch run --confine':
// the file-system-heavy tests check the runner's seccomp allowlist.
var confinedPackages = map[string]bool{"os": true, "io/fs": true, "path/filepath": true, "syscall": true, "testing/fstest": true, "io/ioutil": true}

type tools struct {
	wazero, launch, cache, dir string
}

var (
	toolsOnce sync.Once
	toolsVal  tools
	toolsErr  error
)

// setup builds plain wazero's CLI (from the wazero module this repository
// pins) and launch, once per test binary.
func setup(t *testing.T) tools {
	t.Helper()
	launch := testwasm.Launch(t)
	toolsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ampoule-conformance-")
		if err != nil {
			toolsErr = err
			return
		}
		toolsVal = tools{wazero: filepath.Join(dir, "wazero"), launch: launch, cache: filepath.Join(dir, "cache"), dir: dir}
		cmd := exec.Command("go", "build", "-o", toolsVal.wazero, "github.com/tetratelabs/wazero/cmd/wazero")
		cmd.Dir = testwasm.Root(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			toolsErr = fmt.Errorf("building wazero: %v\n%s", err, out)
		}
	})
	if toolsErr != nil {
		t.Fatal(toolsErr)
	}
	return toolsVal
}

func TestMain(m *testing.M) {
	code := m.Run()
	if toolsVal.dir != "" {
		os.RemoveAll(toolsVal.dir)
	}
	os.Exit(code)
}

// outcome is what one runner produced.
type outcome struct {
	stdout, stderr string
	exit           int
}

// mount is a preopen for both runners.
type mount struct {
	host, guest string
	writable    bool
}

// invocation is one program run, given to both runners alike.
type invocation struct {
	module string // path of the .wasm
	bundle string // for launch: a bundle directory; empty runs the bare module
	args   []string
	env    []string // K=V
	mounts []mount
	stdin  []byte
	dir    string // working directory of the process
}

func (tl tools) runWazero(t *testing.T, in invocation) outcome {
	args := []string{"run", "-cachedir", tl.cache}
	for _, m := range in.mounts {
		spec := m.host + ":" + m.guest
		if !m.writable {
			spec += ":ro"
		}
		args = append(args, "-mount", spec)
	}
	for _, kv := range in.env {
		args = append(args, "-env", kv)
	}
	args = append(args, in.module)
	args = append(args, in.args...)
	return execute(t, tl.wazero, args, in)
}

func (tl tools) runLaunch(t *testing.T, in invocation, extra ...string) outcome {
	args := append([]string{"run", "--profile", "debug", "--backend", "sim", "--cache-dir", tl.cache}, extra...)
	for _, m := range in.mounts {
		spec := m.host + "::" + m.guest
		if m.writable {
			spec += "::rw"
		}
		args = append(args, "--dir", spec)
	}
	for _, kv := range in.env {
		args = append(args, "--env", kv)
	}
	target := in.module
	if in.bundle != "" {
		target = in.bundle
	}
	args = append(args, target, "--")
	args = append(args, in.args...)
	o := execute(t, tl.launch, args, in)
	// The simulator's warning is launch's own line, not the workload's.
	o.stderr = strings.Replace(o.stderr, "launch: warning: backend sim is a software simulator: nothing protects this run from the host (insecure)\n", "", 1)
	return o
}

func execute(t *testing.T, bin string, args []string, in invocation) outcome {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(in.stdin)
	cmd.Dir = in.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			// Errorf, not Fatalf: this may run on a helper goroutine.
			t.Errorf("%s: %v", bin, err)
			return outcome{exit: -1}
		}
	}
	return outcome{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

var resultLine = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)

// results parses 'go test -test.v' output into test name -> PASS/FAIL/SKIP.
func results(out string) map[string]string {
	r := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := resultLine.FindStringSubmatch(sc.Text()); m != nil {
			r[m[2]] = m[1]
		}
	}
	return r
}

// TestGoWASIConformance compiles each standard-library package's tests for
// GOOS=wasip1 and runs the binary through both runners in the package's
// source directory with the host's root mounted, as Go's own wasip1 exec
// wrapper does.
func TestGoWASIConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the external suite compiles and runs the standard library's tests; -short skips it")
	}
	tl := setup(t)
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	var summary []string
	totalWazero, totalLaunch := 0, 0
	for _, pkg := range stdlibPackages {
		t.Run(pkg, func(t *testing.T) {
			bundle := filepath.Join(tl.dir, "bundles", strings.ReplaceAll(pkg, "/", "_"))
			if err := os.MkdirAll(bundle, 0o755); err != nil {
				t.Fatal(err)
			}
			module := filepath.Join(bundle, "module.wasm")
			build := exec.Command("go", "test", "-c", "-o", module, pkg)
			build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("building %s tests: %v\n%s", pkg, err, out)
			}
			// Compile it once into the cache both runners share, before
			// they start side by side, else each compiles the same 5-10 MiB
			// at the same time; every run then loads it.
			if out, err := exec.Command(tl.wazero, "compile", "-cachedir", tl.cache, module).CombinedOutput(); err != nil {
				t.Fatalf("compiling %s tests: %v\n%s", pkg, err, out)
			}
			// Generous limits: the suite, not Ampoule's defaults, is under test.
			manifest := "name = \"stdlib-test\"\nprofiles = [\"debug\"]\n[limits]\nmemory = \"4GiB\"\nwall_time = \"10m\"\noutput = \"1GiB\"\nopen_files = 4096\nfile_output = \"16GiB\"\n"
			if err := os.WriteFile(filepath.Join(bundle, "ampoule.toml"), []byte(manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(goroot, "src", pkg)
			tmp := t.TempDir()
			in := invocation{
				module: module,
				bundle: bundle,
				args:   []string{"-test.v", "-test.short", "-test.timeout=8m"},
				env:    []string{"PWD=" + src, "HOME=" + os.Getenv("HOME"), "PATH=" + os.Getenv("PATH"), "TMPDIR=" + tmp, "GOROOT=" + goroot},
				mounts: []mount{{host: "/", guest: "/", writable: true}},
				dir:    src,
			}
			// The two runs are independent; run them side by side (the time
			// package's tests mostly sleep).
			var w, l outcome
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); w = tl.runWazero(t, in) }()
			l = tl.runLaunch(t, in)
			wg.Wait()
			wr, lr := results(w.stdout+w.stderr), results(l.stdout+l.stderr)
			if confinedPackages[pkg] {
				c := tl.runLaunch(t, in, "--confine")
				cr := results(c.stdout + c.stderr)
				for name, status := range wr {
					if status == "PASS" && cr[name] != "PASS" {
						t.Errorf("%s passes under plain wazero but is %s under launch --confine", name, orMissing(cr[name]))
					}
				}
				if w.exit == 0 && c.exit != 0 {
					t.Errorf("plain wazero exits 0, launch --confine %d:\n%s", c.exit, tail(c.stderr))
				}
				summary = append(summary, fmt.Sprintf("%-16s (launch --confine: %d pass)", pkg, count(cr, "PASS")))
			}
			if len(wr) == 0 {
				t.Fatalf("plain wazero ran no test of %s (exit %d):\n%s", pkg, w.exit, tail(w.stdout+w.stderr))
			}
			var broken []string
			for name, status := range wr {
				if status == "PASS" && lr[name] != "PASS" {
					broken = append(broken, fmt.Sprintf("%s (%s under launch)", name, orMissing(lr[name])))
				}
			}
			sort.Strings(broken)
			if len(broken) > 0 {
				t.Errorf("%d tests pass under plain wazero but not under launch: %s\nlaunch output:\n%s", len(broken), strings.Join(broken, ", "), tail(l.stdout+l.stderr))
			}
			if w.exit == 0 && l.exit != 0 {
				t.Errorf("plain wazero exits 0, launch %d:\n%s", l.exit, tail(l.stderr))
			}
			pw, pl := count(wr, "PASS"), count(lr, "PASS")
			totalWazero += pw
			totalLaunch += pl
			summary = append(summary, fmt.Sprintf("%-16s wazero %4d pass %3d fail %3d skip | launch %4d pass %3d fail %3d skip",
				pkg, pw, count(wr, "FAIL"), count(wr, "SKIP"), pl, count(lr, "FAIL"), count(lr, "SKIP")))
		})
	}
	t.Logf("Go wasip1 standard-library tests, plain wazero vs launch (debug, sim):\n%s\ntotal passing: wazero %d, launch %d",
		strings.Join(summary, "\n"), totalWazero, totalLaunch)
}

func count(r map[string]string, status string) int {
	n := 0
	for _, s := range r {
		if s == status {
			n++
		}
	}
	return n
}

func orMissing(s string) string {
	if s == "" {
		return "did not run"
	}
	return s
}

func tail(s string) string {
	const n = 4000
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
