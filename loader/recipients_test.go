package loader

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

func testRecipient(i int) string { return fmt.Sprintf("alog1%064x", i+1) }

// log_recipients names a team: each recipient kept in order, Recipients
// giving them (or log_recipient's one), and the canonical form carrying
// the list only when it is given, so manifests without one measure as
// before.
func TestLogRecipients(t *testing.T) {
	a, b := testRecipient(0), testRecipient(1)
	m := mustParse(t, fmt.Sprintf("name = \"x\"\nprofiles = [\"staging\"]\nlog_recipients = [%q, %q]\n", a, b))
	if got := m.Recipients(); len(got) != 2 || got[0] != a || got[1] != b || m.LogRecipient != "" {
		t.Errorf("recipients %q, log_recipient %q", got, m.LogRecipient)
	}
	if got := string(m.Canonical()); !strings.Contains(got, `"log_recipient":"","log_recipients":["`+a+`","`+b+`"]`) {
		t.Errorf("canonical form lacks the team: %s", got)
	}
	one := mustParse(t, fmt.Sprintf("name = \"x\"\nprofiles = [\"staging\"]\nlog_recipient = %q\n", a))
	if got := one.Recipients(); len(got) != 1 || got[0] != a {
		t.Errorf("log_recipient's recipients: %q", got)
	}
	if strings.Contains(string(one.Canonical()), "log_recipients") {
		t.Errorf("a manifest without log_recipients measures them: %s", one.Canonical())
	}
	if none := mustParse(t, "name = \"x\"\nprofiles = [\"debug\"]\n"); none.Recipients() != nil {
		t.Errorf("no recipient: %q", none.Recipients())
	}
	var max []string
	for i := 0; i < MaxLogRecipients; i++ {
		max = append(max, fmt.Sprintf("%q", testRecipient(i)))
	}
	if m := mustParse(t, "name = \"x\"\nprofiles = [\"staging\"]\nlog_recipients = ["+strings.Join(max, ", ")+"]\n"); len(m.Recipients()) != MaxLogRecipients {
		t.Errorf("%d recipients kept of %d", len(m.Recipients()), MaxLogRecipients)
	}
}

// Each way log_recipients can be wrong is refused, naming its line and key.
func TestLogRecipientsErrors(t *testing.T) {
	a, b := testRecipient(0), testRecipient(1)
	var many []string
	for i := 0; i <= MaxLogRecipients; i++ {
		many = append(many, fmt.Sprintf("%q", testRecipient(i)))
	}
	head := "name = \"x\"\nprofiles = [\"staging\"]\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"both keys", head + fmt.Sprintf("log_recipient = %q\nlog_recipients = [%q]\n", a, b), "ampoule.toml:4: log_recipients: is given beside log_recipient"},
		{"empty", head + "log_recipients = []\n", "ampoule.toml:3: log_recipients: is empty"},
		{"too many", head + "log_recipients = [" + strings.Join(many, ", ") + "]\n", fmt.Sprintf("log_recipients: lists %d recipients; a log has at most %d", MaxLogRecipients+1, MaxLogRecipients)},
		{"duplicate", head + fmt.Sprintf("log_recipients = [\n  %q,\n  %q,\n  %q,\n]\n", a, b, a), fmt.Sprintf("ampoule.toml:6: log_recipients[2]: %q is listed twice", a)},
		{"not a recipient", head + fmt.Sprintf("log_recipients = [%q, \"age1xyz\"]\n", a), `log_recipients[1]: "age1xyz" is not a log recipient`},
		{"not a list", head + fmt.Sprintf("log_recipients = %q\n", a), "ampoule.toml:3: log_recipients"},
	} {
		_, err := ParseManifest("ampoule.toml", []byte(tc.doc))
		if codeOf(err) != errcode.ManifestInvalid || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want E%d containing %q", tc.name, err, errcode.ManifestInvalid, tc.want)
		}
	}
}

// The team is measured: its members and their order.
func TestLogRecipientsAreMeasured(t *testing.T) {
	a, b := testRecipient(0), testRecipient(1)
	seen := map[Measurement]string{}
	for name, line := range map[string]string{
		"log_recipient":         fmt.Sprintf("log_recipient = %q", a),
		"log_recipients of one": fmt.Sprintf("log_recipients = [%q]", a),
		"a team":                fmt.Sprintf("log_recipients = [%q, %q]", a, b),
		"the team reordered":    fmt.Sprintf("log_recipients = [%q, %q]", b, a),
	} {
		doc := strings.Replace(baseManifest, `log_recipient = "alog1abababababababababababababababababababababababababababababababab"`, line, 1)
		if doc == baseManifest {
			t.Fatal("the edit did nothing")
		}
		got := Measure(bundle(t, doc, minimalModule), "staging")
		if other, ok := seen[got]; ok {
			t.Errorf("%s measures as %s", name, other)
		}
		seen[got] = name
	}
}
