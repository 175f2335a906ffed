package main

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	c, err := parseConfig([]byte(`{"args": ["a", "b"], "env": {"k": "new\nline"}, "root": "fs-tests.dir", "exit_code": 33, "stdout": "hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Args, " ") != "a b" || c.Env["k"] != "new\nline" || c.Root != "fs-tests.dir" || c.ExitCode != 33 || c.Stdout == nil || *c.Stdout != "hello" || c.Stderr != nil {
		t.Errorf("parsed %+v", c)
	}
	for _, bad := range []string{
		`{"operations": [{"type": "run"}]}`, // the later form: refused, not half read
		`{"root": "../../etc"}`,
		`{"root": "/etc"}`,
		`{"exit_code": "1"}`,
		`{} {}`,
		`[`,
	} {
		if _, err := parseConfig([]byte(bad)); err == nil {
			t.Errorf("%s: parsed", bad)
		}
	}
}

// FuzzParseConfig: any bytes give a config or an error, and a config's
// root stays beneath the test's directory.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"root": "fs-tests.dir", "args": []}`))
	f.Add([]byte(`{"env": {"a": "text", "b": "escap \" ing"}}`))
	f.Add([]byte(`{"exit_code": 33}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConfig(b)
		if err != nil {
			return
		}
		if strings.HasPrefix(c.Root, "/") || strings.HasPrefix(c.Root, "..") {
			t.Errorf("root %q accepted", c.Root)
		}
	})
}
