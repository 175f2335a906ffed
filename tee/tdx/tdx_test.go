package tdx

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/testing/testdata"
)

// The quote is real captured evidence that go-tdx-guest ships in its module;
// its certificates are judged at a time they were valid.
var at = time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)

func TestRealQuoteVerifies(t *testing.T) {
	c, err := Verify(testdata.RawQuote, at)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 4 || c.MRTD == ([48]byte{}) {
		t.Errorf("claims %+v", c)
	}
}

func TestQuoteTampersAreRefused(t *testing.T) {
	for name, mutate := range map[string]func([]byte) []byte{
		"header version": func(b []byte) []byte { b[0] = 3; return b },
		"mrtd":           func(b []byte) []byte { b[48+136] ^= 1; return b },
		"report data":    func(b []byte) []byte { b[48+520] ^= 1; return b },
		"signature":      func(b []byte) []byte { b[48+584+4+10] ^= 1; return b },
		"truncated":      func(b []byte) []byte { return b[:600] },
	} {
		raw := mutate(append([]byte(nil), testdata.RawQuote...))
		if _, err := Verify(raw, at); !errors.Is(err, ErrQuote) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	if _, err := Verify(testdata.RawQuote, time.Date(2040, 1, 1, 0, 0, 0, 0, time.UTC)); !errors.Is(err, ErrQuote) {
		t.Error("a quote judged after its certificates expired was accepted")
	}
}

func BenchmarkVerify(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Verify(testdata.RawQuote, at); err != nil {
			b.Fatal(err)
		}
	}
}
