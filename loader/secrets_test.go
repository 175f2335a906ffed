package loader

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// brokerTable is a [broker] a manifest with [secrets] needs.
var brokerTable = "[broker]\nurl = \"https://broker.example:7443\"\nkey = \"" + strings.Repeat("ab", 32) + "\"\n"

func TestManifestSecrets(t *testing.T) {
	doc := "name = \"x\"\nprofiles = [\"debug\"]\ndirs = [\"data::/run\"]\n" + brokerTable +
		"[secrets]\napi-key = \"default/tenant/api-key\"\n\"db.password\" = \"prod/db/password\"\n"
	m := mustParse(t, doc)
	want := map[string]string{"api-key": "default/tenant/api-key", "db.password": "prod/db/password"}
	if fmt.Sprint(m.Secrets) != fmt.Sprint(want) {
		t.Errorf("Secrets = %v, want %v", m.Secrets, want)
	}
	if !strings.Contains(string(m.Canonical()), `"secrets":{"api-key":"default/tenant/api-key","db.password":"prod/db/password"}`) {
		t.Errorf("the canonical form lacks the secrets: %s", m.Canonical())
	}
	// Without [secrets] the canonical form does not name them, so earlier
	// measurements stand.
	if c := mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n").Canonical(); strings.Contains(string(c), "secrets") {
		t.Errorf("a manifest without secrets measures them: %s", c)
	}
}

func TestManifestSecretsErrors(t *testing.T) {
	head := "name = \"x\"\nprofiles = [\"debug\"]\n"
	many := ""
	for i := 0; i <= MaxSecrets; i++ {
		many += fmt.Sprintf("s%d = \"default/tenant/s%d\"\n", i, i)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"no broker", head + "[secrets]\napi-key = \"default/tenant/api-key\"\n", "secrets: needs a [broker]"},
		{"empty", head + brokerTable + "[secrets]\n", "secrets: is empty"},
		{"too many", head + brokerTable + "[secrets]\n" + many, fmt.Sprintf("has %d entries", MaxSecrets+1)},
		{"name with a slash", head + brokerTable + "[secrets]\n\"a/b\" = \"default/tenant/api-key\"\n", `"a/b" is not a valid secret name`},
		{"name dot dot", head + brokerTable + "[secrets]\n\"..\" = \"default/tenant/api-key\"\n", `".." is not a valid secret name`},
		{"hidden name", head + brokerTable + "[secrets]\n\".key\" = \"default/tenant/api-key\"\n", `".key" is not a valid secret name`},
		{"two segments", head + brokerTable + "[secrets]\napi-key = \"tenant/api-key\"\n", "has 2 segments"},
		{"dot dot segment", head + brokerTable + "[secrets]\napi-key = \"default/../api-key\"\n", "not a resource path"},
		{"bad byte", head + brokerTable + "[secrets]\napi-key = \"default/tenant/api key\"\n", "has the byte"},
		{"not a string", head + brokerTable + "[secrets]\napi-key = 3\n", "secrets.api-key: a int64 is not a resource path"},
		{"broker's own", head + brokerTable + "[secrets]\nk = \"ampoule/sealing/key\"\n", "the broker's own repository"},
		{"dir at the secrets", "name = \"x\"\nprofiles = [\"debug\"]\ndirs = [\"data::/run/secrets\"]\n" + brokerTable + "[secrets]\nk = \"default/tenant/k\"\n", `dirs[0]: "/run/secrets" is where the secrets are`},
		{"dir beneath the secrets", "name = \"x\"\nprofiles = [\"debug\"]\ndirs = [\"data::/run/secrets/x\"]\n" + brokerTable + "[secrets]\nk = \"default/tenant/k\"\n", "is where the secrets are"},
		{"sealed at the secrets", head + brokerTable + "[sealed]\nmount = \"/run/secrets\"\n[secrets]\nk = \"default/tenant/k\"\n", `sealed.mount: "/run/secrets" is where the secrets are`},
	} {
		_, err := ParseManifest("ampoule.toml", []byte(tc.doc))
		if codeOf(err) != errcode.ManifestInvalid || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want E1008 with %q", tc.name, err, tc.want)
		}
	}
	// A top-level key appended after [secrets] is read as a secret: the
	// hint says where it belongs.
	_, err := ParseManifest("ampoule.toml", []byte(head+brokerTable+"[secrets]\nk = \"default/tenant/k\"\nstdin = 3\n"))
	if e := errcode.From(err); e == nil || !strings.Contains(e.Hint(), "move stdin above the first [table]") {
		t.Errorf("a top-level key after [secrets]: %v", err)
	}
}
