package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

// script is what 'launch completion SHELL' prints.
func script(t *testing.T, shell string) string {
	t.Helper()
	r := launch(t, "completion", shell)
	if r.code != 0 || r.stdout == "" {
		t.Fatalf("completion %s: %+v", shell, r)
	}
	return r.stdout
}

// complete runs bash's completion function over words, completing the
// last, in a real bash, and returns its answers.
func complete(t *testing.T, file string, words ...string) []string {
	t.Helper()
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	prog := "source " + file + "; COMP_WORDS=(" + strings.Join(quoted, " ") + "); COMP_CWORD=" +
		strconv.Itoa(len(words)-1) + `; _launch; printf '%s\n' "${COMPREPLY[@]}"`
	out, err := exec.Command("bash", "--norc", "-c", prog).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	return strings.Fields(string(out))
}

// TestBashCompletion: the bash script parses (bash -n), and its function,
// run in bash, completes a command, a flag of run, a subcommand, and a
// flag after a subcommand, from the flags the commands define.
func TestBashCompletion(t *testing.T) {
	file := filepath.Join(t.TempDir(), "launch.bash")
	if err := os.WriteFile(file, []byte(script(t, "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", file).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"launch", "ru"}, "run"},
		{[]string{"launch", "run", "--pro"}, "--profile"},
		{[]string{"launch", "run", "--dir", "x", "--log-o"}, "--log-out"},
		{[]string{"launch", "logs", "de"}, "decrypt"},
		{[]string{"launch", "logs", "decrypt", "--ide"}, "--identity"},
		{[]string{"launch", "broker", "serve", "--li"}, "--listen"},
		{[]string{"launch", "keygen", "-"}, "-o -y"},
		{[]string{"launch", "completion", "f"}, "fish"},
	} {
		if got := strings.Join(complete(t, file, tc.words...), " "); got != tc.want {
			t.Errorf("%q<TAB> = %q, want %q", strings.Join(tc.words, " "), got, tc.want)
		}
	}
	if got := complete(t, file, "launch", "run", "--nonsuch"); len(got) != 0 {
		t.Errorf("a flag run does not have completed to %q", got)
	}
	// Every flag of every command is offered after its command.
	for _, d := range program().Docs() {
		for sub, fs := range d.Flags {
			words := []string{"launch", d.Name}
			if sub != "" {
				words = append(words, sub)
			}
			offered := strings.Join(complete(t, file, append(words, "-")...), " ") + " "
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(offered, "-"+f.Name+" ") {
					t.Errorf("%s: -%s not offered: %s", strings.Join(words, " "), f.Name, offered)
				}
			})
		}
	}
}

// TestZshFishCompletion: the zsh and fish scripts parse in their shells
// (zsh -n, fish -n) and name every command, and fish's completes a
// command and flags as bash's does; where a shell is not installed, that
// shell's check says so and the rest still runs.
func TestZshFishCompletion(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		s := script(t, shell)
		for _, c := range program().Commands {
			if !regexp.MustCompile(`[\s(]` + c.Name + `[\s)]`).MatchString(s) {
				t.Errorf("%s script lacks the command %s", shell, c.Name)
			}
		}
		if _, err := exec.LookPath(shell); err != nil {
			t.Logf("%s is not installed: its script's syntax is not checked", shell)
			continue
		}
		file := filepath.Join(t.TempDir(), "launch."+shell)
		os.WriteFile(file, []byte(s), 0o644)
		if out, err := exec.Command(shell, "-n", file).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", shell, err, out)
		}
		if shell != "fish" {
			continue
		}
		// fish completes without a terminal: complete -C.
		for line, want := range map[string]string{"launch ru": "run", "launch run --pro": "--profile", "launch logs decrypt --ide": "--identity", "launch broker key --d": "--db"} {
			out, err := exec.Command("fish", "--no-config", "-c", "source "+file+"; complete -C '"+line+"'").CombinedOutput()
			if got, _, _ := strings.Cut(string(out), "\t"); err != nil || got != want {
				t.Errorf("fish: %q<TAB> = %q (%v), want %q", line, out, err, want)
			}
		}
	}
	if r := launch(t, "completion", "tcsh"); r.code != 2 || !strings.Contains(r.stderr, "bash, zsh or fish") {
		t.Errorf("completion tcsh: %+v", r)
	}
}

// TestManPage: docs/launch.1 is what 'launch man' prints now (run 'make
// docs' after changing a help file or a flag); it has a section per
// command and every flag, and groff reads it without a warning.
func TestManPage(t *testing.T) {
	r := launch(t, "man")
	if r.code != 0 {
		t.Fatalf("man: %+v", r)
	}
	committed, err := os.ReadFile(filepath.Join(testwasm.Root(t), "docs", "launch.1"))
	if err != nil || string(committed) != r.stdout {
		t.Errorf("docs/launch.1 is not what 'launch man' prints (%v): run 'make docs'", err)
	}
	for _, d := range program().Docs() {
		if !strings.Contains(r.stdout, "\n.SS "+d.Name+"\n") {
			t.Errorf("no section for %s", d.Name)
		}
		for _, fs := range d.Flags {
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(r.stdout, ".B "+roffDashed(f.Name)) {
					t.Errorf("%s: no entry for -%s", d.Name, f.Name)
				}
			})
		}
	}
	if _, err := exec.LookPath("groff"); err != nil {
		t.Log("groff is not installed: the page's roff is not checked")
		return
	}
	cmd := exec.CommandContext(context.Background(), "groff", "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(r.stdout)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("groff: %v\n%s", err, stderr.String())
	}
}

// roffDashed is a flag as the man page writes it.
func roffDashed(name string) string {
	if len(name) == 1 {
		return `\-` + name
	}
	return `\-\-` + strings.ReplaceAll(name, "-", `\-`)
}
