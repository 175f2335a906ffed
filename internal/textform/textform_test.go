package textform_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/internal/textform"
	"github.com/ampoule-run/ampoule/tee/snp"
)

// TestPrintFieldsMatchesJSON: the text verify prints for a by-hand check
// has one line per JSON key (nested and listed ones included, an empty
// optional one left out) with the JSON's value, aligned; so the two
// outputs cannot say different things.
func TestPrintFieldsMatchesJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, v := range []any{
		&attest.SNPCheck{SignatureChain: "valid", Signer: "VCEK", Chain: "built in", At: at, Measurement: attest.Hex{0xb0, 0x7a}, TCB: snp.TCB{SNP: 5}, Policy: "0x30000"},
		&attest.TDXCheck{SignatureChain: "valid", TCBStatus: "not judged", At: at, MRTD: attest.Hex{1}, RTMRs: []attest.Hex{{2}, {3}}, Debug: true},
	} {
		var text bytes.Buffer
		textform.Write(&text, v)
		j, _ := json.Marshal(v)
		var flat map[string]any
		json.Unmarshal(j, &flat)
		lines := strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n")
		labels := map[string]string{}
		for _, l := range lines {
			label, value, _ := strings.Cut(l, ":")
			labels[strings.TrimSpace(label)] = strings.TrimSpace(value)
		}
		for key, val := range flat {
			label := strings.ReplaceAll(key, "_", " ")
			switch val := val.(type) {
			case map[string]any:
				for k, inner := range val {
					if got := labels[k]; got != jsonText(inner) {
						t.Errorf("%T %s.%s: text %q, JSON %v", v, key, k, got, inner)
					}
				}
			case []any:
				for i, inner := range val {
					if got := labels[label+"["+string(rune('0'+i))+"]"]; got != jsonText(inner) {
						t.Errorf("%T %s[%d]: text %q, JSON %v", v, key, i, got, inner)
					}
				}
			default:
				if got, ok := labels[label]; !ok || got != jsonText(val) {
					t.Errorf("%T %s: text %q, JSON %v\n%s", v, key, got, val, text.String())
				}
			}
		}
		if _, ok := labels["chain file"]; ok {
			t.Errorf("an empty optional field is shown:\n%s", text.String())
		}
		// The values start in one column.
		col := strings.Index(lines[0], "valid")
		for _, l := range lines {
			if strings.HasSuffix(l, ":") {
				continue
			}
			if i := strings.IndexFunc(l[col-1:], func(r rune) bool { return r != ' ' }); i != 1 {
				t.Errorf("%q is not aligned at column %d", l, col)
			}
		}
	}
}

// jsonText is a decoded JSON value as the text shows it.
func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}
