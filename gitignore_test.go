package ampoule_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestGitignoreCoversTheTour: every file a command in README.md writes into
// the working directory (-o, --db, --log-out, --envelope-out, a redirect)
// is named by .gitignore, so following the README leaves a clean tree.
func TestGitignoreCoversTheTour(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	ignore, err := os.ReadFile(".gitignore")
	if err != nil {
		t.Fatal(err)
	}
	ignored := map[string]bool{}
	for _, line := range strings.Split(string(ignore), "\n") {
		ignored[strings.TrimPrefix(strings.TrimSpace(line), "/")] = true
	}
	out := regexp.MustCompile(`(?:-o|--db|--log-out|--envelope-out|>) +([a-z][a-z0-9_.-]*\.[a-z]+)\b`)
	var checked int
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(line, "bin/launch ") && !strings.HasPrefix(line, "launch ") {
			continue
		}
		for _, m := range out.FindAllStringSubmatch(line, -1) {
			checked++
			if !ignored[m[1]] {
				t.Errorf(".gitignore does not name %s, which README.md's %q leaves", m[1], line)
			}
		}
	}
	if checked < 5 {
		t.Errorf("found only %d files the README's commands write; the pattern no longer matches its commands", checked)
	}
}
