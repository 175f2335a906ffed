// Command wasisuite runs the WASI preview 1 conformance suite
// (WebAssembly/wasi-testsuite: its prebuilt C, Rust and AssemblyScript
// tests) through 'launch run', under each profile asked for, and prints
// one line per test and profile, then the totals. It fetches nothing: give
// it a local copy of the suite (a checkout of its prod/testsuite-base
// branch, or any directory holding tests/*/testsuite/wasm32-wasip1).
//
//	go run ./conformance/wasisuite -launch bin/launch SUITE
//
// Each test runs as the suite's own runner runs it: the arguments and
// environment its .json names, its "root" directory (copied afresh for
// every run, so the checkout stays as it was) mounted read-write at "/"
// (--dir ROOT::/::rw), an empty stdin, and the exit code and the prefix of
// stdout and stderr the .json expects (0 and nothing by default). Under
// debug the module runs bare, with flags; under staging it runs as a
// bundle whose manifest says the same, its stdout and exit status read
// back from the tenant's encrypted log. A test whose .json the tool does
// not understand fails; nothing is skipped. The exit status is 1 if any
// test failed.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

func main() {
	launch := flag.String("launch", "bin/launch", "the launch binary to run")
	profiles := flag.String("profiles", "debug,staging", "the profiles to run each test under, comma-separated")
	run := flag.String("run", "", "run only the tests whose name (suite/test) matches this regular expression")
	timeout := flag.Duration("timeout", 2*time.Minute, "the longest one run may take")
	verbose := flag.Bool("v", false, "print each failing run's output")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: wasisuite [-launch bin/launch] [-profiles debug,staging] [-run REGEXP] SUITE...\n\n"+
			"SUITE is a local copy of WebAssembly/wasi-testsuite (or one of its\n"+
			"tests/*/testsuite/wasm32-wasip1 directories).\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var filter *regexp.Regexp
	if *run != "" {
		var err error
		if filter, err = regexp.Compile(*run); err != nil {
			fatalf("-run: %v", err)
		}
	}
	bin, err := filepath.Abs(*launch)
	if err != nil {
		fatalf("%v", err)
	}
	var suites []string
	for _, root := range flag.Args() {
		s, err := findSuites(root)
		if err != nil {
			fatalf("%v", err)
		}
		suites = append(suites, s...)
	}
	if len(suites) == 0 {
		fatalf("no wasm32-wasip1 test suite (a manifest.json naming version wasm32-wasip1) under %s", strings.Join(flag.Args(), " "))
	}
	work, err := os.MkdirTemp("", "wasisuite-")
	if err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(work)
	r := &runner{launch: bin, work: work, timeout: *timeout}
	if err := r.setup(); err != nil {
		fatalf("%v", err)
	}
	passed, failed := map[string]int{}, map[string]int{}
	var failures []string
	for _, suite := range suites {
		tests, err := filepath.Glob(filepath.Join(suite, "*.wasm"))
		if err != nil {
			fatalf("%v", err)
		}
		sort.Strings(tests)
		name := suiteName(suite)
		for _, wasm := range tests {
			test := name + "/" + strings.TrimSuffix(filepath.Base(wasm), ".wasm")
			if filter != nil && !filter.MatchString(test) {
				continue
			}
			for _, profile := range strings.Split(*profiles, ",") {
				problems, out := r.run(wasm, profile)
				if len(problems) == 0 {
					passed[profile]++
					fmt.Printf("PASS %-8s %s\n", profile, test)
					continue
				}
				failed[profile]++
				failures = append(failures, profile+" "+test)
				fmt.Printf("FAIL %-8s %s: %s\n", profile, test, strings.Join(problems, "; "))
				if *verbose {
					fmt.Printf("%s\n", indent(out))
				}
			}
		}
	}
	for _, profile := range strings.Split(*profiles, ",") {
		fmt.Printf("%s: %d passed, %d failed, of %d\n", profile, passed[profile], failed[profile], passed[profile]+failed[profile])
	}
	if len(failures) > 0 {
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "wasisuite: "+format+"\n", args...)
	os.Exit(2)
}

// findSuites returns the directories under root whose manifest.json names
// the wasm32-wasip1 version.
func findSuites(root string) ([]string, error) {
	var suites []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "manifest.json" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var m struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(b, &m) == nil && m.Version == "wasm32-wasip1" {
			suites = append(suites, filepath.Dir(path))
		}
		return nil
	})
	sort.Strings(suites)
	return suites, err
}

// suiteName names a suite by the language directory above testsuite/
// (tests/c/testsuite/wasm32-wasip1 is "c").
func suiteName(dir string) string {
	parent := filepath.Dir(dir)
	if filepath.Base(parent) == "testsuite" {
		return filepath.Base(filepath.Dir(parent))
	}
	return filepath.Base(dir)
}

// config is a test's .json in the suite's first (legacy) form, the one its
// wasm32-wasip1 tests use.
type config struct {
	Args     []string          `json:"args"`
	Env      map[string]string `json:"env"`
	Root     string            `json:"root"`
	ExitCode int               `json:"exit_code"`
	Stdout   *string           `json:"stdout"`
	Stderr   *string           `json:"stderr"`
}

func readConfig(wasm string) (config, error) {
	var c config
	b, err := os.ReadFile(strings.TrimSuffix(wasm, ".wasm") + ".json")
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	return parseConfig(b)
}

// parseConfig decodes a test's .json; a field the tool does not know (the
// suite's later "operations" form, which its wasm32-wasip1 tests do not
// use) is an error, so that no test passes with part of it ignored.
func parseConfig(b []byte) (config, error) {
	var c config
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return config{}, fmt.Errorf("its .json: %v (this tool reads only args, env, root, exit_code, stdout and stderr)", err)
	}
	if d.More() {
		return config{}, errors.New("its .json: more than one value")
	}
	if filepath.IsAbs(c.Root) || strings.HasPrefix(filepath.Clean(c.Root), "..") {
		return config{}, fmt.Errorf("its .json: root %q is not beneath the test's directory", c.Root)
	}
	return c, nil
}

type runner struct {
	launch, work string
	timeout      time.Duration
	identity     string // the tenant's log identity, for staging
	recipient    string
	n            int
}

func (r *runner) setup() error {
	r.identity = filepath.Join(r.work, "tenant.key")
	out, err := exec.Command(r.launch, "keygen", "-o", r.identity).Output()
	if err != nil {
		return fmt.Errorf("launch keygen: %v", err)
	}
	r.recipient = strings.TrimSpace(string(out))
	return nil
}

// result is what one run produced.
type result struct {
	exit           int
	stdout, stderr string
}

// run runs one test under one profile and returns what differed from its
// expectations, and the run's output for -v.
func (r *runner) run(wasm, profile string) ([]string, string) {
	c, err := readConfig(wasm)
	if err != nil {
		return []string{err.Error()}, ""
	}
	r.n++
	dir := filepath.Join(r.work, strconv.Itoa(r.n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return []string{err.Error()}, ""
	}
	defer os.RemoveAll(dir)
	root := ""
	if c.Root != "" {
		root = filepath.Join(dir, "root")
		if err := copyTree(filepath.Join(filepath.Dir(wasm), c.Root), root); err != nil {
			return []string{"copying its root: " + err.Error()}, ""
		}
	}
	var res result
	switch profile {
	case "debug":
		res, err = r.runDebug(wasm, c, root)
	case "staging":
		res, err = r.runStaging(wasm, c, root, dir)
	default:
		err = fmt.Errorf("profile %q: this tool runs debug and staging", profile)
	}
	if err != nil {
		return []string{err.Error()}, res.stdout + res.stderr
	}
	var problems []string
	if res.exit != c.ExitCode {
		problems = append(problems, fmt.Sprintf("exit %d, want %d", res.exit, c.ExitCode))
	}
	if c.Stdout != nil && !strings.HasPrefix(res.stdout, *c.Stdout) {
		problems = append(problems, fmt.Sprintf("stdout %q, want %q", res.stdout, *c.Stdout))
	}
	if c.Stderr != nil && !strings.HasPrefix(res.stderr, *c.Stderr) {
		problems = append(problems, fmt.Sprintf("stderr %q, want %q", res.stderr, *c.Stderr))
	}
	if len(problems) > 0 && res.stderr != "" {
		problems = append(problems, "stderr: "+lastLine(res.stderr))
	}
	return problems, "stdout:\n" + res.stdout + "stderr:\n" + res.stderr
}

const simWarning = "launch: warning: backend sim is a software simulator: nothing protects this run from the host (insecure)\n"

func (r *runner) runDebug(wasm string, c config, root string) (result, error) {
	args := []string{"run", "--profile", "debug", "--backend", "sim", "--no-cache", "--sim-key", filepath.Join(r.work, "sim.key")}
	if root != "" {
		args = append(args, "--dir", root+"::/::rw")
	}
	for _, k := range sortedKeys(c.Env) {
		args = append(args, "--env", k+"="+c.Env[k])
	}
	args = append(args, wasm, "--")
	args = append(args, c.Args...)
	res, err := r.exec(args...)
	res.stderr = strings.Replace(res.stderr, simWarning, "", 1)
	return res, err
}

// exitStatus is how the tenant's log records a workload's nonzero exit.
var exitStatus = regexp.MustCompile(`E2002 workload-exit: the workload exited with status (\d+)`)

func (r *runner) runStaging(wasm string, c config, root, dir string) (result, error) {
	bundle := filepath.Join(dir, "bundle")
	if err := os.Mkdir(bundle, 0o755); err != nil {
		return result{}, err
	}
	module, err := os.ReadFile(wasm)
	if err != nil {
		return result{}, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "module.wasm"), module, 0o644); err != nil {
		return result{}, err
	}
	m := map[string]any{
		"name": "wasisuite", "version": "1.0.0", "profiles": []string{"staging"},
		"log_recipient": r.recipient,
	}
	if len(c.Args) > 0 {
		m["args"] = c.Args
	}
	if len(c.Env) > 0 {
		m["env"] = c.Env
	}
	if root != "" {
		m["dirs"] = []string{root + "::/::rw"}
	}
	manifest, err := toml.Marshal(m)
	if err != nil {
		return result{}, err
	}
	if err := os.WriteFile(filepath.Join(bundle, "ampoule.toml"), manifest, 0o644); err != nil {
		return result{}, err
	}
	log := filepath.Join(dir, "run.log")
	ran, err := r.exec("run", "--profile", "staging", "--backend", "sim", "--no-cache", "--sim-key", filepath.Join(r.work, "sim.key"), "--log-out", log, bundle)
	if err != nil {
		return ran, err
	}
	opened, err := r.exec("logs", "decrypt", "--identity", r.identity, log)
	if err != nil {
		return opened, err
	}
	if opened.exit != 0 {
		return opened, fmt.Errorf("launch logs decrypt: exit %d: %s", opened.exit, lastLine(opened.stderr))
	}
	res := result{stdout: opened.stdout, stderr: opened.stderr}
	switch {
	case ran.exit == 0:
	case exitStatus.MatchString(opened.stderr):
		res.exit, _ = strconv.Atoi(exitStatus.FindStringSubmatch(opened.stderr)[1])
	default:
		// launch's own failure, not the workload's exit: its static line.
		res.exit = -ran.exit
		res.stderr += ran.stdout + ran.stderr
	}
	return res, nil
}

func (r *runner) exec(args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.launch, args...)
	cmd.Stdin = strings.NewReader("")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("launch %s: no exit within %v", args[0], r.timeout)
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return res, err
	}
	res.exit = cmd.ProcessState.ExitCode()
	return res, nil
}

// copyTree copies a directory's files, directories and symbolic links.
func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.Mkdir(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case d.Type().IsRegular():
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			defer src.Close()
			out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, src); err != nil {
				out.Close()
				return err
			}
			return out.Close()
		default:
			return fmt.Errorf("%s: not a file, directory or symbolic link", path)
		}
	})
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
