package attest

import (
	"errors"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestHinted: an error naming an input first gets that input's hint, a
// refusal the refusal's hint where the input has one, and an error naming
// none is left as it is.
func TestHinted(t *testing.T) {
	for flag, hint := range InputHints {
		if flag == "EVIDENCE" {
			continue
		}
		err := Hinted(errcode.Errorf(errcode.EvidenceMalformed, "%s: %w", flag, errors.New("no such file")))
		if got := errcode.From(err).Hint(); got != hint {
			t.Errorf("%s: hint %q, want %q", flag, got, hint)
		}
	}
	for flag, hint := range refusedHints {
		err := Hinted(errcode.Errorf(errcode.EvidenceRefused, "%s: signature does not verify", flag))
		if got := errcode.From(err).Hint(); got != hint {
			t.Errorf("%s refused: hint %q, want %q", flag, got, hint)
		}
	}
	plain := errcode.Errorf(errcode.EvidenceMalformed, "no flag here")
	if Hinted(plain) != plain {
		t.Errorf("an error naming no input was changed")
	}
	if err := InputError("--policy", errcode.Errorf(errcode.PolicyInvalid, "bad")); !strings.HasPrefix(errcode.From(err).Error(), "--policy: ") {
		t.Errorf("InputError does not name its flag: %v", err)
	}
}

// TestCheckProduct: the three processor lines, with or without a
// stepping, are taken; anything else is a usage error.
func TestCheckProduct(t *testing.T) {
	for _, p := range []string{"Milan", "Genoa", "Turin", "Milan-B1"} {
		if err := CheckProduct(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{"", "milan", "Naples", "B1-Milan"} {
		if err := CheckProduct(p); errcode.From(err).Code != errcode.Usage {
			t.Errorf("%q: %v, want a usage error", p, err)
		}
	}
}

// TestResultWriteText: the verdict's line, then a line per reason.
func TestResultWriteText(t *testing.T) {
	var b strings.Builder
	Result{Status: Warning, Kind: "sim", Profile: "staging", Measurement: "ab", Reasons: []string{"insecure", "old"}}.WriteText(&b)
	if want := "warning: sim evidence, profile staging, measurement ab\n  - insecure\n  - old\n"; b.String() != want {
		t.Errorf("%q, want %q", b.String(), want)
	}
}
