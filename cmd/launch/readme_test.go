package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
)

// readmeSection returns the text of README.md's "## title" section.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testwasm.Root(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	return sec
}

// shellBlocks are the ```sh blocks of text.
func shellBlocks(text string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// TestREADMEFiveMinutes runs the README's "Five minutes" blocks verbatim,
// as a new user would: the install in the repository's root (go install,
// into a GOPATH of the test's own, which puts launch on PATH), then the
// tour in an empty directory with a HOME of its own: init, build with the
// Go toolchain, run under debug, stage with a log key, decrypt. The README
// cannot drift from what launch does.
func TestREADMEFiveMinutes(t *testing.T) {
	blocks := shellBlocks(readmeSection(t, "Five minutes"))
	if len(blocks) != 2 || !strings.Contains(blocks[0], "go install ./cmd/launch") {
		t.Fatalf("the section's blocks are not the install and the tour: %q", blocks)
	}
	install, tour := blocks[0], blocks[1]
	for _, step := range []string{"launch init ", "go build", "launch run .", "launch run --profile staging", "launch logs decrypt"} {
		if !strings.Contains(tour, step) {
			t.Errorf("the tour has no %q", step)
		}
	}
	goEnv := goToolchainEnv(t)
	work, home, gopath := t.TempDir(), t.TempDir(), t.TempDir()
	script := "cd '" + testwasm.Root(t) + "'\n" + install + "cd '" + work + "'\n" + tour
	cmd := exec.Command("sh", "-ec", script)
	cmd.Env = []string{
		"PATH=" + filepath.Dir(goEnv["GO"]) + string(os.PathListSeparator) + "/usr/bin:/bin",
		"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"), "GOPATH=" + gopath,
	}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOTOOLCHAIN", "GOPROXY"} {
		cmd.Env = append(cmd.Env, k+"="+goEnv[k])
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the Five minutes blocks: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	// The debug run and the decrypted log each print the greeting.
	if n := strings.Count(stdout.String(), "Hello, world, from hello!\n"); n != 2 {
		t.Errorf("the greeting %d times, want 2 (debug run, decrypted log):\n%s", n, stdout.String())
	}
	log, err := os.ReadFile(filepath.Join(work, "hello", "run.log"))
	if err != nil || !bytes.HasPrefix(log, []byte(logging.Magic)) || bytes.Contains(log, []byte("Hello, world")) {
		t.Errorf("the staging run's log: %v, %q...", err, log[:min(len(log), 40)])
	}
	if !strings.Contains(stderr.String(), "launch: log intact, evidence not judged") {
		t.Errorf("decrypt's summary is missing:\n%s", stderr.String())
	}
}

// TestREADMEVerifiesTheSamples runs the README's launch verify commands on
// the sample evidence in testdata/, as written, from the repository's root.
func TestREADMEVerifiesTheSamples(t *testing.T) {
	var lines []string
	for _, b := range shellBlocks(readmeSection(t, "Evidence and verification")) {
		for _, l := range strings.Split(b, "\n") {
			if strings.HasPrefix(l, "bin/launch verify ") && strings.Contains(l, "testdata/") {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) != 2 {
		t.Fatalf("README verifies %d samples, want the SEV-SNP report and the TDX quote: %q", len(lines), lines)
	}
	for _, l := range lines {
		args := strings.Fields(l)[1:]
		cmd := exec.Command(testwasm.Launch(t), args...)
		cmd.Dir = testwasm.Root(t)
		out, err := cmd.CombinedOutput()
		if err != nil || !regexp.MustCompile(`(?m)^signature chain: +valid$`).Match(out) {
			t.Errorf("%s: %v\n%s", l, err, out)
		}
	}
}
